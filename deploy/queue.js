'use strict';

/*
 * Queue mode for the Serverless routes (docs/queue.md), on when the deployer's environment has
 * FS2SPLIT_DELIVERY=queue; everything here is empty otherwise, so direct mode deploys exactly as before.
 *
 * AWS (serverless.aws.yml): an SQS standard queue with a dead-letter queue (14 days), the drain function fed by
 * an event source mapping with ReportBatchItemFailures, and IAM on these queues only. osls does not create the
 * queue for an sqs event: it is declared here as CloudFormation resources.
 *   FS2SPLIT_AWS_QUEUE_BATCH_SIZE (1000), FS2SPLIT_AWS_QUEUE_BATCHING_WINDOW (10 s),
 *   FS2SPLIT_AWS_QUEUE_MAX_CONCURRENCY (2), FS2SPLIT_AWS_DRAIN_TIMEOUT (60 s)
 * GCP (serverless.yml): the drain function's settings; the topic, subscriptions and scheduler job are made by
 * deploy/serverless-gcp-gen2 with gcloud (see gcpQueue).
 */

const DEFAULT_BACKOFF_S = 60;

function queueMode(env = process.env) {
  return (env.FS2SPLIT_DELIVERY || '').trim().toLowerCase() === 'queue';
}

function number(env, name, fallback, min, max) {
  const raw = (env[name] || '').trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`${name} must be a number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function backoff(env) {
  return number(env, 'FS2SPLIT_DRAIN_BACKOFF_SECONDS', DEFAULT_BACKOFF_S, 1, 600);
}

/** Receives that outlast an hour-long outage at the backoff; never below AWS's recommended 5. */
function maxReceives(env = process.env) {
  return Math.max(5, Math.ceil(3600 / backoff(env)) + 1);
}

function drainTimeout(env) {
  return number(env, 'FS2SPLIT_AWS_DRAIN_TIMEOUT', 60, 10, 900);
}

function awsResources(env = process.env) {
  if (!queueMode(env)) return {};
  return {
    Fs2splitDeadLetters: {
      Type: 'AWS::SQS::Queue',
      Properties: { MessageRetentionPeriod: 1209600, SqsManagedSseEnabled: true },
    },
    Fs2splitEventsQueue: {
      Type: 'AWS::SQS::Queue',
      Properties: {
        // At least six times the drain's timeout (AWS's rule for event source mappings).
        VisibilityTimeout: 6 * drainTimeout(env),
        MessageRetentionPeriod: 1209600,
        SqsManagedSseEnabled: true,
        RedrivePolicy: {
          deadLetterTargetArn: { 'Fn::GetAtt': ['Fs2splitDeadLetters', 'Arn'] },
          maxReceiveCount: maxReceives(env),
        },
      },
    },
  };
}

function awsFunctions(env = process.env) {
  if (!queueMode(env)) return {};
  return {
    drain: {
      handler: 'main.lambda_drain',
      description: "Delivers fs2split's queued webhooks to FME and FullStory in batches",
      timeout: drainTimeout(env),
      environment: awsQueueEnvironment(env),
      events: [
        {
          sqs: {
            arn: { 'Fn::GetAtt': ['Fs2splitEventsQueue', 'Arn'] },
            batchSize: number(env, 'FS2SPLIT_AWS_QUEUE_BATCH_SIZE', 1000, 1, 10000),
            maximumBatchingWindow: number(env, 'FS2SPLIT_AWS_QUEUE_BATCHING_WINDOW', 10, 0, 300),
            functionResponseType: 'ReportBatchItemFailures',
            maximumConcurrency: number(env, 'FS2SPLIT_AWS_QUEUE_MAX_CONCURRENCY', 2, 2, 1000),
          },
        },
      ],
    },
  };
}

function awsQueueEnvironment(env = process.env) {
  if (!queueMode(env)) return {};
  return { FS2SPLIT_QUEUE_URL: { Ref: 'Fs2splitEventsQueue' } };
}

/** The webhook sends, the drain receives and sets visibility (the mapping deletes): this queue only. */
function awsQueueStatements(env = process.env) {
  if (!queueMode(env)) return [];
  return [
    {
      Effect: 'Allow',
      Action: [
        'sqs:SendMessage',
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:GetQueueAttributes',
      ],
      Resource: [{ 'Fn::GetAtt': ['Fs2splitEventsQueue', 'Arn'] }],
    },
  ];
}

/*
 * GCP: names and settings the serverless-gcp-gen2 plugin uses to create the topic, the pull subscription with its
 * dead-letter topic (and a subscription keeping the dead letters), the private drain function and the Cloud
 * Scheduler job calling it every minute with an OIDC token of FS2SPLIT_GCP_SCHEDULER_ACCOUNT.
 */
function gcpNames(env, service = 'fs2split') {
  const project = (env.GOOGLE_CLOUD_PROJECT || '').trim();
  return {
    topic: `projects/${project}/topics/${service}-events`,
    subscription: `projects/${project}/subscriptions/${service}-drain`,
    deadTopic: `projects/${project}/topics/${service}-dead-letters`,
    deadSubscription: `projects/${project}/subscriptions/${service}-dead-letters`,
  };
}

function gcpQueue(env = process.env) {
  if (!queueMode(env)) return { enabled: false };
  const account = (env.FS2SPLIT_GCP_SCHEDULER_ACCOUNT || '').trim();
  if (!account) {
    throw new Error('FS2SPLIT_DELIVERY=queue needs FS2SPLIT_GCP_SCHEDULER_ACCOUNT: the service account Cloud Scheduler calls the drain as');
  }
  // Pub/Sub redelivers at most once a drain run (every minute) or once the backoff ran out, whichever is later.
  const attempts = Math.min(100, Math.max(5, Math.ceil(3600 / Math.max(backoff(env), 60)) + 1));
  return { enabled: true, ...gcpNames(env), maxDeliveryAttempts: attempts, schedulerAccount: account };
}

function gcpQueueEnvironment(env = process.env) {
  if (!queueMode(env)) return {};
  const { topic, subscription } = gcpNames(env);
  return { FS2SPLIT_PUBSUB_TOPIC: topic, FS2SPLIT_PUBSUB_SUBSCRIPTION: subscription };
}

function gcpFunctions(env = process.env) {
  if (!queueMode(env)) return {};
  return {
    // Pulls for 50 s (FS2SPLIT_DRAIN_SECONDS' default), then delivers the last batch within the timeout.
    drain: { handler: 'drain', events: [{ http: 'drain' }], timeout: '60s', environment: gcpQueueEnvironment(env) },
  };
}

module.exports = {
  queueMode,
  gcpQueue: () => gcpQueue(),
  gcpQueueEnvironment: () => gcpQueueEnvironment(),
  gcpFunctions: () => gcpFunctions(),
  gcpQueueFrom: gcpQueue,
  maxReceives,
  awsResources: () => awsResources(),
  awsFunctions: () => awsFunctions(),
  awsQueueEnvironment: () => awsQueueEnvironment(),
  awsQueueStatements: () => awsQueueStatements(),
  awsResourcesFrom: awsResources,
  awsFunctionsFrom: awsFunctions,
  awsQueueStatementsFrom: awsQueueStatements,
};
