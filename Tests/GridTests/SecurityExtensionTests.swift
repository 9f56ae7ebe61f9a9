// The security extension's payloads and keys as plain values (OCPP 1.6 security whitepaper, edition 2).
// The certificate store itself (OpenSSL) is tested end to end in Tests/grid/test_ocpp.py against the
// `ocpp` package and the `cryptography` library.
import Grid
import Testing

@Suite struct SecurityExtensionTests {
    @Test func certificateIdentitiesCompareAsTheWhitepaperWritesThem() {
        let a = CertificateHashData(hashAlgorithm: .SHA256, issuerNameHash: "AB01", issuerKeyHash: "cd", serialNumber: "00ff")
        #expect(a.same(as: CertificateHashData(hashAlgorithm: .SHA256, issuerNameHash: "ab01", issuerKeyHash: "CD", serialNumber: "FF")))
        #expect(!a.same(as: CertificateHashData(hashAlgorithm: .SHA384, issuerNameHash: "ab01", issuerKeyHash: "cd", serialNumber: "ff")))
        #expect(!a.same(as: CertificateHashData(hashAlgorithm: .SHA256, issuerNameHash: "ab01", issuerKeyHash: "cd", serialNumber: "fe")))
        #expect(!a.same(as: CertificateHashData(hashAlgorithm: .SHA256, issuerNameHash: "ab02", issuerKeyHash: "cd", serialNumber: "ff")))
    }

    @Test func cpoNameIsOneLineOfAnOrganizationNamesLength() {
        var s = OCPPSettings(heartbeatInterval: 300, meterValueSampleInterval: 60, connectionTimeOut: 60)
        let f = OCPPSettings.Facts(connectors: 2, featureProfiles: "Core", maxStackLevel: 99, maxPeriods: 48, maxProfiles: 64, securityProfile: 3)
        #expect((try? s.set("CpoName", "Highway CPO", connectors: 2).get()) != nil)
        #expect(s.value("CpoName", f) == "Highway CPO")
        #expect((try? s.set("CpoName", String(repeating: "x", count: SecurityFieldLimits.cpoName + 1), connectors: 2).get()) == nil)
        #expect((try? s.set("CpoName", "two\nlines", connectors: 2).get()) == nil)
        #expect(s.value("CpoName", f) == "Highway CPO", "a refused value changes nothing")
        #expect(s.stored(f)["CpoName"] == "Highway CPO", "kept across restarts with the other writable keys")
        #expect(s.value("CertificateStoreMaxLength", f) == "20")
        #expect(s.value("CertificateSignedMaxChainSize", f) == "10000")
        #expect(s.value("AdditionalRootCertificateCheck", f) == "false")
        let keys = Dictionary(OCPPSettings.keys.map { ($0.name, $0.writable) }, uniquingKeysWith: { a, _ in a })
        #expect(keys["CpoName"] == true && keys["CertificateStoreMaxLength"] == false && keys["SecurityProfile"] == true)
        #expect(s.stored(f)["SecurityProfile"] == nil && s.stored(f)["AuthorizationKey"] == nil, "kept apart by the client")
    }

    @Test func aSignedUpdateWithoutItsSignatureNamesTheField() throws {
        let v = try JSONValue(json: #"{"requestId":4,"firmware":{"location":"http://x/p","retrieveDateTime":"2026-11-28T00:00:00Z","signingCertificate":"-"}}"#)
        do {
            _ = try v.decode(SignedUpdateFirmwareReq.self)
            Issue.record("decoded without a signature")
        } catch {
            let (code, text) = CallErrorCode.of(error)
            #expect(code == .OccurenceConstraintViolation)
            #expect(text == "firmware.signature is required")
        }
        let log = try JSONValue(json: #"{"logType":"AuditLog","requestId":1,"log":{"remoteLocation":"ftp://x/"}}"#)
        #expect(throws: (any Error).self) { try log.decode(GetLogReq.self) }
    }

    @Test func signedStepsAreFirmwareStatusesAndTriggersKnowTheExtendedMessages() throws {
        let n = try JSONValue(json: #"{"status":"SignatureVerified","requestId":7}"#).decode(SignedFirmwareStatusNotificationReq.self)
        #expect(n == SignedFirmwareStatusNotificationReq(status: .SignatureVerified, requestId: 7))
        let t = try JSONValue(json: #"{"requestedMessage":"SignChargePointCertificate"}"#).decode(ExtendedTriggerMessageReq.self)
        #expect(t.requestedMessage == .SignChargePointCertificate && t.connectorId == nil)
    }
}
