/*
 * FME (Split) feature-flag impressions into FullStory, in the browser.
 *
 * Load this after the FullStory snippet and before you create the FME JavaScript SDK factory. Each
 * evaluation then becomes a FullStory "split_evaluation" event with the same properties fs2split sends for
 * server-side evaluations (Python SDK listener, FME impressions webhook), so one FullStory segment covers
 * browser and server alike:
 *
 *   { impression: { feature, treatment, keyName, label, changeNumber, time, bucketingKey? },
 *     environmentName?, sdkLanguageVersion }
 *
 * Evaluation attributes are NOT sent: they often hold personal data.
 *
 * Two forms, built from one source (examples/browser/src/listener.js):
 *   split-evaluation-listener.js   classic script: defines window.createFullStoryImpressionListener
 *   split-evaluation-listener.mjs  ES module:      import { createFullStoryImpressionListener } from '...mjs'
 *
 * Usage:
 *
 *   // 1. Identify the user in FullStory with the SAME key the FME SDK evaluates.
 *   FS('setIdentity', { uid: userKey });
 *
 *   // 2. Create the FME SDK with the listener.
 *   var factory = SplitFactory({
 *     core: { authorizationKey: '<client-side SDK key>', key: userKey },
 *     impressionListener: createFullStoryImpressionListener({ environmentName: 'Production' })
 *   });
 *   var client = factory.client();
 *   client.on(client.Event.SDK_READY, function () {
 *     var treatment = client.getTreatment('new_checkout');   // -> one split_evaluation event
 *   });
 *
 * Options:
 *   environmentName  the FME environment, sent as `environmentName` (the webhook sends it too).
 *   once             'page' (default): each key, flag, treatment and flag version is sent once per page load.
 *                    'session': once per tab session (sessionStorage), so a reload does not send it again;
 *                    where storage is blocked, once per page.
 *   fs               the FullStory API function; default: the page's global `FS`.
 *
 * If FullStory is blocked (an ad blocker, a failed script load), its snippet drops the calls silently.
 */

var EVENT_NAME = 'split_evaluation';
// sessionStorage is shared by every script of this origin in this tab: a prefix keeps our entries apart.
var SESSION_PREFIX = 'fs2split:split_evaluation:';

function isText(value) {
  return typeof value === 'string' && value.trim() !== '';
}

function isNumber(value) {
  return typeof value === 'number' && isFinite(value);
}

// The tab's sessionStorage, or null where the browser blocks it (reading the property itself can throw).
function sessionStore() {
  try {
    var store = root.sessionStorage;
    var probe = SESSION_PREFIX + 'probe';
    store.setItem(probe, '1');
    store.removeItem(probe);
    return store;
  } catch (blocked) {
    return null;
  }
}

/**
 * An FME JavaScript SDK impression listener: `impressionListener: createFullStoryImpressionListener()`.
 */
function createFullStoryImpressionListener(options) {
  options = options || {};
  // The SDK calls the listener on every evaluation. FullStory needs the treatment once, not on every
  // render: remember what was sent (key, flag, treatment and flag version, like fs2split does).
  var sent = {};
  var store = options.once === 'session' ? sessionStore() : null;

  function wasSent(id) {
    if (Object.prototype.hasOwnProperty.call(sent, id)) return true;
    try {
      return store !== null && store.getItem(SESSION_PREFIX + id) !== null;
    } catch (blocked) {
      return false;
    }
  }

  function markSent(id) {
    sent[id] = true;
    try {
      if (store !== null) store.setItem(SESSION_PREFIX + id, '1');
    } catch (full) {
      // Quota reached or storage revoked: this page still remembers it.
    }
  }

  return {
    logImpression: function (data) {
      try {
        var i = data && data.impression;
        if (!i || !isText(i.keyName) || !isText(i.feature) || !isText(i.treatment)) return;
        var id = JSON.stringify([i.keyName, i.feature, i.treatment, isNumber(i.changeNumber) ? i.changeNumber : null]);
        if (wasSent(id)) return;

        var impression = { feature: i.feature, treatment: i.treatment, keyName: i.keyName };
        if (isText(i.label)) impression.label = i.label;
        if (isNumber(i.changeNumber)) impression.changeNumber = i.changeNumber;
        if (isNumber(i.time)) impression.time = i.time;
        if (isText(i.bucketingKey)) impression.bucketingKey = i.bucketingKey;

        var properties = { impression: impression };
        if (isText(options.environmentName)) properties.environmentName = options.environmentName;
        if (isText(data.sdkLanguageVersion)) properties.sdkLanguageVersion = data.sdkLanguageVersion;

        var fs = options.fs || root.FS;
        if (typeof fs !== 'function') return; // FullStory not loaded (blocked, or not on this page)
        fs('trackEvent', { name: EVENT_NAME, properties: properties });
        markSent(id);
      } catch (ignored) {
        // Never let FullStory break a feature-flag evaluation.
      }
    }
  };
}
