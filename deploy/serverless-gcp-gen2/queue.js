'use strict';

/*
 * Queue mode's GCP resources, made with gcloud by the serverless-gcp-gen2 plugin (custom.gcpGen2.queue, filled by
 * deploy/queue.js). Creating what exists already updates it instead, so a redeploy is safe.
 */

function tryCreateElse(plugin, create, otherwise) {
  try {
    plugin.gcloud(create);
  } catch (error) {
    if (!otherwise) return; // a topic that exists: nothing to change
    plugin.gcloud(otherwise);
  }
}

/** Before the functions: the topics and subscriptions the webhook publishes to and the drain pulls from. */
function ensureTopics(plugin, queue) {
  const project = `--project=${plugin.project}`;
  tryCreateElse(plugin, ['pubsub', 'topics', 'create', queue.topic, project, '--quiet']);
  tryCreateElse(plugin, ['pubsub', 'topics', 'create', queue.deadTopic, project, '--quiet']);
  // Without a subscription, messages sent to the dead-letter topic are dropped: this one keeps them 7 days.
  tryCreateElse(plugin, [
    'pubsub', 'subscriptions', 'create', queue.deadSubscription, `--topic=${queue.deadTopic}`,
    '--message-retention-duration=7d', '--expiration-period=never', project, '--quiet',
  ]);
  const settings = [
    '--ack-deadline=120',
    `--dead-letter-topic=${queue.deadTopic}`,
    `--max-delivery-attempts=${queue.maxDeliveryAttempts}`,
    '--message-retention-duration=7d',
    '--expiration-period=never',
    project,
    '--quiet',
  ];
  tryCreateElse(
    plugin,
    ['pubsub', 'subscriptions', 'create', queue.subscription, `--topic=${queue.topic}`, ...settings],
    ['pubsub', 'subscriptions', 'update', queue.subscription, ...settings]
  );
  // Dead-lettering is done by Pub/Sub's service agent: publisher on the dead-letter topic, subscriber here.
  const number = plugin.gcloud(['projects', 'describe', plugin.project, '--format=value(projectNumber)'], {
    capture: true,
  });
  if (/^[0-9]+$/.test(number)) {
    const agent = `--member=serviceAccount:service-${number}@gcp-sa-pubsub.iam.gserviceaccount.com`;
    plugin.gcloud(['pubsub', 'topics', 'add-iam-policy-binding', queue.deadTopic, agent, '--role=roles/pubsub.publisher', project, '--quiet']);
    plugin.gcloud(['pubsub', 'subscriptions', 'add-iam-policy-binding', queue.subscription, agent, '--role=roles/pubsub.subscriber', project, '--quiet']);
  } else {
    plugin.log.warning('Could not read the project number: grant the Pub/Sub service agent access to dead letters by hand.');
  }
}

/** After the drain function: only the scheduler's account may invoke it, every minute, with an OIDC token. */
function scheduleDrain(plugin, queue, drainName, url) {
  const member = `--member=serviceAccount:${queue.schedulerAccount}`;
  plugin.gcloud([
    'run', 'services', 'add-iam-policy-binding', drainName, `--region=${plugin.region}`,
    `--project=${plugin.project}`, member, '--role=roles/run.invoker', '--quiet',
  ]);
  const job = [
    `--location=${plugin.region}`,
    `--project=${plugin.project}`,
    '--schedule=* * * * *',
    `--uri=${url}`,
    '--http-method=POST',
    `--oidc-service-account-email=${queue.schedulerAccount}`,
    `--oidc-token-audience=${url}`,
    '--attempt-deadline=90s',
    '--max-retry-attempts=0', // the next minute's run is the retry
    '--quiet',
  ];
  tryCreateElse(
    plugin,
    ['scheduler', 'jobs', 'create', 'http', drainName, ...job],
    ['scheduler', 'jobs', 'update', 'http', drainName, ...job]
  );
}

module.exports = { ensureTopics, scheduleDrain };
