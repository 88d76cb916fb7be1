export { DELIVERY_HEADER, Dispatcher, sinkUrlProblem, type DispatchStats, type DispatcherLog, type DispatcherOptions } from "./dispatcher.js";
export { slackEscape, slackPayload, slackRequest, slackText, type SlackPayload } from "./slack.js";
export {
  commitUrl,
  isNotifyEvent,
  NOTIFY_EVENTS,
  shortRevision,
  type Notification,
  type NotificationConfig,
  type NotifyEvent,
  type SinkRequest,
} from "./types.js";
export { EVENT_HEADER, SIGNATURE_HEADER, signBody, verifySignature, webhookRequest } from "./webhook.js";
