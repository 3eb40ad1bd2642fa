import PosLedger

/// How a terminal reaches central. The session logic exists once; a
/// transport only carries one request and brings back one reply.
public protocol SyncTransport {
    func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage
}

/// Whatever answers the protocol's requests: central's handler in this
/// process, or a server a transport reaches over the network.
public protocol SyncEndpoint: AnyObject, Sendable {
    /// Answers one request (hello, push, pull, fetch) with its reply or a refusal.
    func handle(_ request: SyncMessage) -> SyncMessage
}

/// Central in the same process. Every message still goes through its byte
/// encoding both ways, so the in-process path exercises the wire format.
public struct InProcessTransport: SyncTransport {
    public let central: any SyncEndpoint
    public init(central: any SyncEndpoint) { self.central = central }

    public func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
        let onWire = try SyncMessage.decode(request.encoded())
        let reply = central.handle(onWire)
        return try SyncMessage.decode(reply.encoded())
    }
}

extension SyncMessage {
    /// The terminal a request (hello, push, pull, fetch) speaks for; nil for a reply.
    public var requestingTerminal: ReplicaId? {
        switch self {
        case .hello(let m): m.terminal
        case .push(let m): m.terminal
        case .pull(let m): m.terminal
        case .fetch(let m): m.terminal
        case .welcome, .ack, .events, .refusal, .fetched: nil
        }
    }
}
