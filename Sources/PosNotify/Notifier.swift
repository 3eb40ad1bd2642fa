/// What one delivery attempt came to. The delivery log records it, and it
/// decides what happens next (sync-protocol.md, "Notifications", "States").
public enum DeliveryOutcome: Sendable, Equatable {
    /// The gateway took the notification (HTTP 2xx; the line is in the file, fsynced).
    case delivered(detail: String)
    /// Nothing reached the gateway, or it said it took nothing (refused connection, HTTP 5xx or 429):
    /// tried again after a backoff, up to the attempts bound. `retryAfterMillis`: the gateway's own ask.
    case failedRetryable(detail: String, retryAfterMillis: Int64?)
    /// The gateway refused this notification for good (another HTTP 4xx, a redirect): dead-lettered at once.
    case failedPermanent(detail: String)
    /// The request may have reached the gateway, and no answer says what it did (the connection broke,
    /// or the reply did not come in time, after the request was sent): dead-lettered, never sent again.
    case outcomeUnknown(detail: String)

    public var detail: String {
        switch self {
        case .delivered(let d), .failedRetryable(let d, _), .failedPermanent(let d), .outcomeUnknown(let d): d
        }
    }
}

/// Delivers one notification somewhere: an SMS gateway behind a webhook, a file.
/// `deliver` blocks until it knows the outcome (or its own timeouts end the
/// attempt) and never throws: every failure is an outcome. The delivery log
/// decides when to call it, and never calls it twice for one notification
/// unless the previous attempt was a definite failure (`failedRetryable`).
public protocol Notifier: Sendable {
    /// Where notifications go, for logs and listings: `webhook https://…`, `file /…/out.jsonl`.
    var destination: String { get }
    /// One attempt. `body` is `notification.body`, the bytes to send (and sign) as they are; `attempt` counts from 1.
    func deliver(_ notification: CustomerNotification, body: [UInt8], attempt: Int) -> DeliveryOutcome
    /// Releases connections and files; `deliver` is not called after it.
    func close()
}
