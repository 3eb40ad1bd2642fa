import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes a connection whose next request does not arrive whole in time
/// (sync-protocol.md, "HTTP", "Connections"): the clock starts when the
/// connection opens and again once the previous exchange is over (its answer
/// sent and its request's last byte read, in whichever order they happen: the
/// server may answer before it has read a body it refuses), and it stops while
/// the server works on a request that arrived whole. A client that sends one
/// byte a second, an idle keep-alive connection, a connection that never sends
/// anything and one that trickles the body of a request already answered are
/// all closed after `SyncServerSettings.requestArrivalMillisMax`, so open
/// connections cost the server a bounded time each. An answer that says
/// `Connection: close` closes the connection once it is sent.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limit: TimeAmount
    private var timer: Scheduled<Void>?
    /// The current request's last byte has been read.
    private var requestComplete = false
    /// The answer to the current request has been sent.
    private var answered = false
    /// The answer being written says `Connection: close`.
    private var closeAfterAnswer = false

    init(limit: TimeAmount) { self.limit = limit }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: limit) {
            loopBound.value.close(promise: nil)
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            requestComplete = false
            answered = false
        case .end:
            requestComplete = true
            // Answered already (before its body was read): the exchange is over, the next request's clock starts.
            // Otherwise the server works on it, and its answer starts the clock.
            if answered { arm(context) } else { disarm() }
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let response):
            closeAfterAnswer = response.headerFields[.connection]?.lowercased() == "close"
            context.write(data, promise: promise)
        case .end:
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let written = promise ?? context.eventLoop.makePromise()
            written.futureResult.whenSuccess {
                let (handler, context) = loopBound.value
                handler.answered = true
                if handler.closeAfterAnswer {
                    context.close(promise: nil)
                } else if handler.requestComplete {
                    handler.arm(context)
                }
                // Else the request's body is still arriving: its arrival clock keeps running.
            }
            context.write(data, promise: written)
        case .body:
            context.write(data, promise: promise)
        }
    }
}
