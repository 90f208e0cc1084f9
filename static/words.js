// Every sentence the page shows for the session's states (the status line, the notices, the
// chat log's system lines) and the connection labels, by name: the session logic picks
// which, the view shows it. The words themselves are the page's language's (i18n.js); each
// is looked up when it is read.

import { t } from './i18n.js';

export const TEXT = {
  get idle() {
    return t('client.idle');
  },
  get starting() {
    return t('client.starting');
  },
  get looking() {
    return t('client.looking');
  },
  get found() {
    return t('client.found');
  },
  get connecting() {
    return t('client.connecting');
  },
  get connected() {
    return t('client.connected');
  },
  get stillConnecting() {
    return t('client.still_connecting');
  },
  get stillConnectingRelay() {
    return t('client.still_connecting_relay');
  },
  get interrupted() {
    return t('client.interrupted');
  },
  get failed() {
    return t('client.failed');
  },
  get left() {
    return t('client.left');
  },
  get strangerLeft() {
    return t('client.stranger_left');
  },
  get talking() {
    return t('client.talking');
  },
  get textConnected() {
    return t('client.text_connected');
  },
  get connectingServer() {
    return t('client.connecting_server');
  },
  get reconnecting() {
    return t('client.reconnecting');
  },
  get connectedServer() {
    return t('client.connected_server');
  },
  get offline() {
    return t('client.offline');
  },
  get lostServer() {
    return t('client.lost_server');
  },
  get lostServerLine() {
    return t('client.lost_server_line');
  },
  get callGoesOn() {
    return t('client.call_goes_on');
  },
  get noRemoteVideo() {
    return t('client.no_remote_video');
  },
  get remoteCameraOff() {
    return t('client.remote_camera_off');
  },
  get noVideoCalls() {
    return t('client.no_video_calls');
  },
  get hideIpNoRelay() {
    return t('client.hide_ip_no_relay');
  },
  get reported() {
    return t('client.reported');
  },
  get reportedIdle() {
    return t('client.reported_idle');
  },
  get reportGone() {
    return t('client.report_gone');
  },
  get reportNotSent() {
    return t('client.report_not_sent');
  },
  get rateLimited() {
    return t('client.rate_limited');
  },
  get banned() {
    return t('client.banned');
  },
  get banOver() {
    return t('client.ban_over');
  },
};

export const CONNECTION_LABELS = {
  get connecting() {
    return TEXT.connecting;
  },
  get connected() {
    return TEXT.connectedServer;
  },
  get reconnecting() {
    return TEXT.reconnecting;
  },
  get closed() {
    return TEXT.offline;
  },
};
