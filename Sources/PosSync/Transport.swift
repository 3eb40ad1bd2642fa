/// How a terminal reaches central. The session logic exists once; a
/// transport only carries one request and brings back one reply.
public protocol SyncTransport {
    func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage
}

/// Central in the same process. Every message still goes through its byte
/// encoding both ways, so the in-process path exercises the wire format.
public struct InProcessTransport: SyncTransport {
    public let central: any CentralStore
    public init(central: any CentralStore) { self.central = central }

    public func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
        let onWire = try SyncMessage.decode(request.encoded())
        let reply = central.handle(onWire)
        return try SyncMessage.decode(reply.encoded())
    }
}
