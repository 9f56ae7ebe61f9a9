// Every file of every fuzz target's corpus (Fuzz/corpus/TARGET, the seeds and every reproducer of a defect
// the fuzzers found) through its target, uninstrumented: a defect found once stays found. The long runs
// are `make fuzz-parsers`; `make test` also runs each target briefly under libFuzzer (docs/fuzzing.md).
import Foundation
import ParserFuzzing
import Testing

@Suite struct FuzzCorpora {
    static let root: String = {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() }
        return dir.path
    }()

    @Test(arguments: FuzzTargets.all.map(\.name))
    func everyCorpusFileRunsClean(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let dir = Self.root + "/Fuzz/corpus/" + name
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files.count >= 3, "\(name): a corpus of at least three seeds")
        // The site-file target reads Boards/ relative to the working directory, as make runs it.
        FileManager.default.changeCurrentDirectoryPath(Self.root)
        for f in files {
            let bytes = try #require(FileManager.default.contents(atPath: dir + "/" + f))
            target.run(Array(bytes))
        }
    }
}
