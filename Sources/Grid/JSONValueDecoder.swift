// A Decoder that reads a JSONValue, so that a payload already parsed into its frame decodes to its type
// without a second trip through JSON text, and every error names the field by its path: Foundation's
// JSONDecoder reports a number that does not fit its field (1.5 for an Int) as "not valid JSON" with no
// path, which a CALLERROR could not explain to the central system.

struct JSONValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let o) = value else { throw mismatch([String: JSONValue].self, value, codingPath) }
        return KeyedDecodingContainer(Keyed<Key>(object: o, codingPath: codingPath))
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let a) = value else { throw mismatch([JSONValue].self, value, codingPath) }
        return Unkeyed(array: a, codingPath: codingPath)
    }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(value: value, codingPath: codingPath) }
}

struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(_ i: Int) { intValue = i }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}

func mismatch(_ type: Any.Type, _ v: JSONValue, _ path: [any CodingKey]) -> DecodingError {
    if case .null = v { return .valueNotFound(type, .init(codingPath: path, debugDescription: "null where a value is required")) }
    return .typeMismatch(type, .init(codingPath: path, debugDescription: "found \(v.kind)"))
}

extension JSONValue {
    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// The scalar readings every container shares.
func scalar<T>(_ type: T.Type, _ v: JSONValue, _ path: [any CodingKey]) throws -> T {
    switch (v, type) {
    case (.bool(let b), is Bool.Type): return b as! T
    case (.string(let s), is String.Type): return s as! T
    case (.int(let i), is Double.Type): return Double(i) as! T
    case (.double(let d), is Double.Type): return d as! T
    case (.int(let i), is Float.Type): return Float(i) as! T
    case (.double(let d), is Float.Type): return Float(d) as! T
    default: throw mismatch(type, v, path)
    }
}

func integer<T: FixedWidthInteger>(_ type: T.Type, _ v: JSONValue, _ path: [any CodingKey]) throws -> T {
    switch v {
    case .int(let i):
        guard let x = T(exactly: i) else { throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "\(i) is out of range")) }
        return x
    case .double(let d):
        // 3.0 is the integer 3; 1.5 is not an integer.
        guard let x = T(exactly: d) else { throw DecodingError.typeMismatch(type, .init(codingPath: path, debugDescription: "found \(d)")) }
        return x
    default: throw mismatch(type, v, path)
    }
}

func typed<T: Decodable>(_ type: T.Type, _ v: JSONValue, _ path: [any CodingKey]) throws -> T {
    switch type {
    case is Bool.Type, is String.Type, is Double.Type, is Float.Type: return try scalar(type, v, path)
    case is Int.Type: return try integer(Int.self, v, path) as! T
    case is Int64.Type: return try integer(Int64.self, v, path) as! T
    case is Int32.Type: return try integer(Int32.self, v, path) as! T
    case is UInt64.Type: return try integer(UInt64.self, v, path) as! T
    case is UInt32.Type: return try integer(UInt32.self, v, path) as! T
    case is JSONValue.Type: return v as! T
    default: return try T(from: JSONValueDecoder(value: v, codingPath: path))
    }
}

struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: [String: JSONValue]
    let codingPath: [any CodingKey]
    var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }
    func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }
    func value(_ key: Key) throws -> JSONValue {
        guard let v = object[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no \(key.stringValue)"))
        }
        return v
    }
    func decodeNil(forKey key: Key) throws -> Bool { if case .null = try value(key) { return true }; return false }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try typed(type, try value(key), codingPath + [key]) }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let v = object[key.stringValue] else { return nil }
        if case .null = v { return nil }
        return try typed(type, v, codingPath + [key])
    }
    func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> {
        try JSONValueDecoder(value: try value(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try JSONValueDecoder(value: try value(key), codingPath: codingPath + [key]).unkeyedContainer()
    }
    func superDecoder() throws -> any Decoder { JSONValueDecoder(value: .object(object), codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { JSONValueDecoder(value: try value(key), codingPath: codingPath + [key]) }
}

struct Unkeyed: UnkeyedDecodingContainer {
    let array: [JSONValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0
    init(array: [JSONValue], codingPath: [any CodingKey]) { self.array = array; self.codingPath = codingPath }
    var count: Int? { array.count }
    var isAtEnd: Bool { currentIndex >= array.count }
    mutating func next<T>(_ type: T.Type) throws -> (JSONValue, [any CodingKey]) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [IndexKey(currentIndex)], debugDescription: "past the end"))
        }
        defer { currentIndex += 1 }
        return (array[currentIndex], codingPath + [IndexKey(currentIndex)])
    }
    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, case .null = array[currentIndex] else { return false }
        currentIndex += 1
        return true
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { let (v, p) = try next(type); return try typed(type, v, p) }
    mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> {
        let (v, p) = try next([String: JSONValue].self); return try JSONValueDecoder(value: v, codingPath: p).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (v, p) = try next([JSONValue].self); return try JSONValueDecoder(value: v, codingPath: p).unkeyedContainer()
    }
    mutating func superDecoder() throws -> any Decoder { let (v, p) = try next(JSONValue.self); return JSONValueDecoder(value: v, codingPath: p) }
}

struct Single: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]
    func decodeNil() -> Bool { if case .null = value { return true }; return false }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try typed(type, value, codingPath) }
}
