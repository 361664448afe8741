/*
 * FME (Split) feature-flag impressions into FullStory, in the browser.
 *
 * Copy this file into your page (or bundle), after the FullStory snippet and before you create the FME
 * JavaScript SDK factory. Each evaluation then becomes a FullStory "split_evaluation" event with the same
 * properties fs2split sends for server-side evaluations (Python SDK listener, FME impressions webhook), so one
 * FullStory segment covers browser and server alike:
 *
 *   { impression: { feature, treatment, keyName, label, changeNumber, time, bucketingKey? },
 *     environmentName?, sdkLanguageVersion }
 *
 * Evaluation attributes are NOT sent: they often hold personal data.
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
 */
(function (root) {
  'use strict';

  var EVENT_NAME = 'split_evaluation';

  function isText(value) {
    return typeof value === 'string' && value.trim() !== '';
  }

  function isNumber(value) {
    return typeof value === 'number' && isFinite(value);
  }

  /**
   * An FME JavaScript SDK impression listener: `impressionListener: createFullStoryImpressionListener()`.
   *
   * options.environmentName  the FME environment, sent as `environmentName` (the webhook sends it too).
   * options.fs               the FullStory API function; default: the page's global `FS`.
   */
  function createFullStoryImpressionListener(options) {
    options = options || {};
    // The SDK calls the listener on every evaluation. FullStory needs the treatment once per page, not on
    // every render: remember what was sent (key, flag, treatment and flag version, like fs2split does).
    var sent = {};

    return {
      logImpression: function (data) {
        try {
          var i = data && data.impression;
          if (!i || !isText(i.keyName) || !isText(i.feature) || !isText(i.treatment)) return;
          var id = JSON.stringify([i.keyName, i.feature, i.treatment, isNumber(i.changeNumber) ? i.changeNumber : null]);
          if (Object.prototype.hasOwnProperty.call(sent, id)) return;

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
          sent[id] = true;
        } catch (ignored) {
          // Never let FullStory break a feature-flag evaluation.
        }
      }
    };
  }

  root.createFullStoryImpressionListener = createFullStoryImpressionListener;
  if (typeof module !== 'undefined' && module.exports) {
    module.exports = { createFullStoryImpressionListener: createFullStoryImpressionListener };
  }
})(typeof window !== 'undefined' ? window : globalThis);
