// The locations GetDiagnostics (and a firmware download) are given, read as the transfers use them.
import GridInterfaces
import Testing

@Suite struct TransferLocationTests {
    @Test func readsSchemesPortsCredentialsAndPaths() throws {
        let a = try #require(TransferLocation("https://csms.example.com/diag/CP001/"))
        #expect(a.scheme == .https && a.host == "csms.example.com" && a.port == 443 && a.path == "/diag/CP001/" && a.user == nil)
        let b = try #require(TransferLocation("FTP://diag:p%40ss@10.0.0.5:2121/up"))
        #expect(b.scheme == .ftp && b.host == "10.0.0.5" && b.port == 2121 && b.path == "/up" && b.user == "diag" && b.password == "p@ss")
        #expect(b.display == "ftp://diag@10.0.0.5:2121/up", "the password is never shown")
        let c = try #require(TransferLocation("http://[::1]:8080"))
        #expect(c.host == "::1" && c.port == 8080 && c.path == "/")
        #expect(TransferLocation("http://h/")?.port == 80 && TransferLocation("ftp://h/")?.port == 21)
    }

    @Test func refusesWhatIsNotATransferURL() {
        for bad in ["gopher://h/", "h/path", "http:///nohost", "http://h:0/", "http://h:99999/", "http://h:port/", "ftp://a b/"] {
            #expect(TransferLocation(bad) == nil, "\(bad)")
        }
    }
}
