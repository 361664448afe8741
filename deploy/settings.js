'use strict';

/*
 * The function's settings, read from the deployer's environment by serverless.yml (GCP) and serverless.aws.yml.
 *
 *   SPLIT_EVENTS_URL, FULLSTORY_API_URL, SPLIT_TRAFFIC_TYPE, LOG_LEVEL   forwarded when set
 *   FS2SPLIT_*                                                          forwarded when set (all the optional
 *                                                                       settings), except the deploy-time ones:
 *   FS2SPLIT_GCP_* and FS2SPLIT_AWS_*                                   read here, never forwarded
 *
 * Secrets never travel as values, only as references:
 *   FS2SPLIT_GCP_<NAME>_SECRET = projects/P/secrets/S/versions/V, or S:V for a secret in the function's project
 *   FS2SPLIT_AWS_<NAME>_SECRET = a Secrets Manager ARN (as create-secret prints it) or a secret name
 * for NAME in SECRET_NAMES. A value such as SPLIT_API_KEY in the deployer's shell is never deployed.
 */

const SECRET_NAMES = [
  'SPLIT_API_KEY',
  'FULLSTORY_API_KEY',
  'FULLSTORY_WEBHOOK_SECRET',
  'FULLSTORY_WEBHOOK_SECRET_PREVIOUS',
  'SPLIT_IMPRESSIONS_TOKEN',
  'FULLSTORY_STREAM_TOKEN',
];
const PLAIN_NAMES = ['SPLIT_EVENTS_URL', 'FULLSTORY_API_URL', 'SPLIT_TRAFFIC_TYPE', 'LOG_LEVEL'];
const PASS_THROUGH_PREFIX = 'FS2SPLIT_';
const DEPLOY_ONLY_PREFIXES = ['FS2SPLIT_GCP_', 'FS2SPLIT_AWS_'];

const GCP_VERSION = /^projects\/([^/]+)\/secrets\/([a-zA-Z0-9_-]+)\/versions\/(latest|[0-9]+)$/;
const GCP_SHORT = /^([a-zA-Z0-9_-]+):(latest|[0-9]+)$/;
const AWS_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
const AWS_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

function set(env, name) {
  const value = env[name];
  return value !== undefined && value.trim() !== '';
}

/** Non-secret settings: the named ones and every FS2SPLIT_* that is not a deploy-time setting. */
function plainEnvironment(env = process.env) {
  const names = Object.keys(env)
    .filter(
      (name) =>
        PLAIN_NAMES.includes(name) ||
        (name.startsWith(PASS_THROUGH_PREFIX) &&
          !DEPLOY_ONLY_PREFIXES.some((prefix) => name.startsWith(prefix)))
    )
    .filter((name) => set(env, name))
    .sort();
  return Object.fromEntries(names.map((name) => [name, env[name].trim()]));
}

function configured(env, cloud) {
  return SECRET_NAMES.map((name) => [name, `FS2SPLIT_${cloud}_${name}_SECRET`])
    .filter(([, variable]) => set(env, variable))
    .map(([name, variable]) => [name, variable, env[variable].trim()]);
}

/** GCP secrets in the google provider's own `secrets` layout: {NAME: {projectId?, secret, version}}. */
function gcpSecrets(env = process.env) {
  const secrets = {};
  for (const [name, variable, reference] of configured(env, 'GCP')) {
    let match = GCP_VERSION.exec(reference);
    if (match) {
      secrets[name] = { projectId: match[1], secret: match[2], version: match[3] };
      continue;
    }
    match = GCP_SHORT.exec(reference);
    if (match) {
      secrets[name] = { secret: match[1], version: match[2] };
      continue;
    }
    throw new Error(
      `${variable} must be a Secret Manager version, projects/PROJECT/secrets/SECRET/versions/VERSION ` +
        `or SECRET:VERSION (VERSION a number, or latest), got "${reference}"`
    );
  }
  return secrets;
}

function awsReferences(env) {
  return configured(env, 'AWS').map(([name, variable, reference]) => {
    if (!AWS_ARN.test(reference) && (reference.startsWith('arn:') || !AWS_NAME.test(reference))) {
      throw new Error(`${variable} must be a Secrets Manager secret ARN or name, got "${reference}"`);
    }
    return [name, reference];
  });
}

/** Lambda environment: the plain settings plus <NAME>_SECRET references, fetched by the function at run time. */
function awsEnvironment(env = process.env) {
  const references = Object.fromEntries(awsReferences(env).map(([name, ref]) => [`${name}_SECRET`, ref]));
  return { ...plainEnvironment(env), ...references };
}

/**
 * IAM statements letting the function read exactly the configured secrets (none configured: no statement).
 * A name becomes an ARN pattern in the stack's own account and region; the "-??????" matches the random
 * suffix Secrets Manager appends to every secret's ARN.
 */
function awsSecretStatements(env = process.env) {
  const resources = awsReferences(env).map(([, ref]) =>
    ref.startsWith('arn:')
      ? ref
      : {
          'Fn::Sub': `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${ref}-??????`,
        }
  );
  const statements = [];
  if (resources.length) {
    statements.push({ Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: resources });
  }
  if (set(env, 'FS2SPLIT_AWS_SECRETS_KMS_KEY_ARN') && resources.length) {
    // Only for secrets encrypted with a customer managed key; the AWS managed key needs no grant.
    statements.push({
      Effect: 'Allow',
      Action: ['kms:Decrypt'],
      Resource: [env.FS2SPLIT_AWS_SECRETS_KMS_KEY_ARN.trim()],
    });
  }
  // Queue mode (deploy/queue.js): the queue's own permissions; none in direct mode.
  return [...statements, ...require('./queue.js').awsQueueStatementsFrom(env)];
}

module.exports = {
  SECRET_NAMES,
  environment: () => plainEnvironment(),
  gcpSecrets: () => gcpSecrets(),
  awsEnvironment: () => awsEnvironment(),
  awsSecretStatements: () => awsSecretStatements(),
  // For tests and other tools: the same mappings over any environment.
  plainEnvironment,
  gcpSecretsFrom: gcpSecrets,
  awsEnvironmentFrom: awsEnvironment,
  awsSecretStatementsFrom: awsSecretStatements,
};
