'use strict';

/*
 * serverless-gcp-gen2: deploy a `provider: google` service to Cloud Functions 2nd gen with gcloud.
 *
 * serverless-google-cloudfunctions (4.6.0, the last release) deploys 1st-gen functions through Cloud
 * Deployment Manager, which Google has shut down. This plugin keeps that plugin for what still works (the
 * provider schema, `serverless package`, which zips the service) and replaces its deploy, remove and info
 * steps with gcloud:
 *
 *   deploy  gcloud functions deploy <service>-<stage>-<function> --gen2 --trigger-http --source <the package>
 *   remove  gcloud functions delete <service>-<stage>-<function> --gen2 --quiet
 *   info    gcloud functions describe ... --format value(serviceConfig.uri), with the webhook URLs to paste
 *
 * Taken from serverless.yml: provider.{project, region, runtime, memorySize, timeout, serviceAccountEmail,
 * environment, secrets, labels, credentials} (each overridable per function, as in the google plugin) and
 * custom.gcpGen2.{allowUnauthenticated, secretsMode, maxInstances, minInstances, concurrency, cpu, ingress}.
 *
 * Secrets (provider.secrets, the google plugin's layout {ENV: {projectId?, secret, version}}):
 *   secretsMode: inject     --set-secrets ENV=projects/P/secrets/S:V; Cloud Run puts the value in ENV when an
 *                           instance starts (no Secret Manager client in the function)
 *   secretsMode: reference  ENV_SECRET=projects/P/secrets/S/versions/V; the function fetches it on first use
 * Either way the function's service account needs roles/secretmanager.secretAccessor on each secret.
 */

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const JSZip = require('jszip');
const queueSteps = require('./queue.js');

const STEP_PREFIX = 'gcp-gen2';
const NEW_RUNTIMES = ['python310', 'python311', 'python312', 'python313'];
// Plugins of serverless-google-cloudfunctions whose hooks call Deployment Manager or the 1st-gen API.
const REPLACED_PLUGINS = new Set(['GoogleDeploy', 'GoogleRemove', 'GoogleInfo']);
const REPLACED_EVENTS = [
  'before:deploy:deploy',
  'deploy:deploy',
  'after:deploy:deploy',
  'before:remove:remove',
  'remove:remove',
  'before:info:info',
  'info:info',
];

class ServerlessGcpGen2 {
  constructor(serverless, options, utils) {
    this.serverless = serverless;
    this.options = options || {};
    // osls passes {log}; the fallback keeps the plugin usable by anything that does not.
    this.log = (utils && utils.log) || { notice: console.log, warning: console.warn }; // eslint-disable-line no-console
    this.hooks = {};

    if (serverless.service.provider.name !== 'google') return;

    this.allowNewerRuntimes();
    // Counts may come from environment variables, i.e. as strings.
    const count = (minimum) => ({
      anyOf: [
        { type: 'integer', minimum },
        { type: 'string', pattern: minimum ? '^[1-9][0-9]*$' : '^[0-9]+$' },
      ],
    });
    serverless.configSchemaHandler.defineCustomProperties({
      properties: {
        gcpGen2: {
          type: 'object',
          properties: {
            allowUnauthenticated: { type: 'boolean' },
            secretsMode: { enum: ['inject', 'reference'] },
            maxInstances: count(1),
            minInstances: count(0),
            concurrency: count(1),
            cpu: { type: 'string' },
            ingress: { enum: ['all', 'internal-only', 'internal-and-gclb'] },
            // Queue mode (deploy/queue.js, ./queue.js): topics, subscriptions and the drain's scheduler job.
            queue: { type: 'object' },
          },
          additionalProperties: false,
        },
      },
    });

    this.hooks = {
      initialize: () => this.replaceDeploymentManagerHooks(),
      'deploy:deploy': () => this.deploy(),
      'remove:remove': () => this.remove(),
      'info:info': () => this.info(),
    };
  }

  /** The google plugin's schema stops at python39; 2nd gen runs newer Pythons. */
  allowNewerRuntimes() {
    const runtimes = this.serverless.configSchemaHandler.schema.definitions.cloudFunctionRuntime;
    if (runtimes && Array.isArray(runtimes.enum)) {
      for (const runtime of NEW_RUNTIMES) if (!runtimes.enum.includes(runtime)) runtimes.enum.push(runtime);
    }
  }

  /** Drop the google plugin's Deployment Manager deploy, remove and info steps; this plugin runs instead. */
  replaceDeploymentManagerHooks() {
    const { hooks } = this.serverless.pluginManager;
    for (const event of REPLACED_EVENTS) {
      if (hooks[event]) hooks[event] = hooks[event].filter((hook) => !REPLACED_PLUGINS.has(hook.pluginName));
    }
  }

  get provider() {
    return this.serverless.getProvider('google');
  }

  get settings() {
    return (this.serverless.service.custom && this.serverless.service.custom.gcpGen2) || {};
  }

  get stage() {
    return this.options.stage || this.serverless.service.provider.stage || 'dev';
  }

  get region() {
    return this.options.region || this.serverless.service.provider.region || 'us-central1';
  }

  get project() {
    const { project } = this.serverless.service.provider;
    if (!project) throw new this.serverless.classes.Error('no Google Cloud project: set GOOGLE_CLOUD_PROJECT (and GOOGLE_CLOUD_REGION, default us-central1) to deploy; `serverless package` needs neither', 'GCP_GEN2_NO_PROJECT');
    return project;
  }

  functionName(name) {
    return `${this.serverless.service.service}-${this.stage}-${name}`;
  }

  locationArgs() {
    return ['--gen2', `--region=${this.region}`, `--project=${this.project}`];
  }

  gcloud(args, { capture = false } = {}) {
    const env = { ...process.env, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' };
    const { credentials } = this.serverless.service.provider;
    if (credentials) {
      env.CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE = path.resolve(this.serverless.serviceDir, credentials);
    }
    const result = spawnSync('gcloud', args, {
      env,
      encoding: 'utf8',
      stdio: capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    });
    if (result.error) {
      throw new this.serverless.classes.Error(
        `Could not run gcloud (${result.error.message}). Install the Google Cloud CLI and log in.`,
        'GCP_GEN2_NO_GCLOUD'
      );
    }
    if (result.status !== 0) {
      throw new this.serverless.classes.Error(
        `gcloud ${args.slice(0, 3).join(' ')} failed with exit code ${result.status}`,
        'GCP_GEN2_GCLOUD_FAILED'
      );
    }
    return capture ? result.stdout.trim() : '';
  }

  /** The package `serverless package` built, unzipped: exactly what gets uploaded. */
  async sourceDir() {
    const service = this.serverless.service;
    const packageDir =
      this.options.package || service.package.path || path.join(this.serverless.serviceDir, '.serverless');
    const artifact = service.package.artifact || path.join(packageDir, `${service.service}.zip`);
    if (!fs.existsSync(artifact)) {
      throw new this.serverless.classes.Error(`No package at ${artifact}`, 'GCP_GEN2_NO_PACKAGE');
    }
    const target = path.join(this.serverless.serviceDir, '.serverless', `${STEP_PREFIX}-source`);
    fs.rmSync(target, { recursive: true, force: true });
    const zip = await JSZip.loadAsync(fs.readFileSync(artifact));
    for (const entry of Object.values(zip.files)) {
      const destination = path.join(target, entry.name);
      if (!destination.startsWith(target + path.sep)) continue; // no path escapes from the archive
      if (entry.dir) {
        fs.mkdirSync(destination, { recursive: true });
      } else {
        fs.mkdirSync(path.dirname(destination), { recursive: true });
        fs.writeFileSync(destination, await entry.async('nodebuffer'));
      }
    }
    return target;
  }

  deployArgs(name, fn, source) {
    const provider = this.serverless.service.provider;
    const custom = this.settings;
    const pick = (key) => (fn[key] !== undefined ? fn[key] : provider[key]);
    const environment = { ...this.provider.getConfiguredEnvironment(fn) };
    const secrets = this.provider.getConfiguredSecrets(fn).map(({ key, projectId, secret, version }) => ({
      key,
      project: projectId || this.project,
      secret,
      version,
    }));
    const mode = custom.secretsMode || 'inject';
    if (!['inject', 'reference'].includes(mode)) {
      throw new this.serverless.classes.Error(
        `custom.gcpGen2.secretsMode must be inject or reference, not "${mode}"`,
        'GCP_GEN2_SECRETS_MODE'
      );
    }

    const args = [
      'functions',
      'deploy',
      this.functionName(name),
      ...this.locationArgs(),
      `--runtime=${this.provider.getRuntime(fn)}`,
      `--entry-point=${fn.handler}`,
      '--trigger-http',
      // The queue's drain is private: only the scheduler's account may call it.
      custom.allowUnauthenticated === false || this.isDrain(fn) ? '--no-allow-unauthenticated' : '--allow-unauthenticated',
      `--source=${source}`,
      `--memory=${pick('memorySize') || 256}Mi`,
      `--timeout=${pick('timeout') || '60s'}`,
      `--ingress-settings=${custom.ingress || 'all'}`,
    ];
    if (custom.cpu) args.push(`--cpu=${custom.cpu}`);
    if (custom.concurrency) args.push(`--concurrency=${custom.concurrency}`);
    if (custom.maxInstances) args.push(`--max-instances=${custom.maxInstances}`);
    if (custom.minInstances !== undefined) args.push(`--min-instances=${custom.minInstances}`);
    const account = pick('serviceAccountEmail');
    if (account) args.push(`--service-account=${account}`);
    const labels = { ...(provider.labels || {}), ...(fn.labels || {}) };
    if (Object.keys(labels).length) {
      args.push(`--update-labels=${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',')}`);
    }

    if (mode === 'reference') {
      for (const { key, project, secret, version } of secrets) {
        environment[`${key}_SECRET`] = `projects/${project}/secrets/${secret}/versions/${version}`;
      }
      args.push('--clear-secrets');
    } else if (secrets.length) {
      const refs = secrets.map(({ key, project, secret, version }) => {
        return `${key}=projects/${project}/secrets/${secret}:${version}`;
      });
      args.push(`--set-secrets=${refs.join(',')}`);
    } else {
      args.push('--clear-secrets');
    }

    if (Object.keys(environment).length) {
      // A YAML file, not --set-env-vars: values such as FS2SPLIT_EVENT_TYPE_MAP hold commas. JSON strings
      // are YAML double-quoted scalars.
      const envFile = path.join(this.serverless.serviceDir, '.serverless', `${STEP_PREFIX}-env.yaml`);
      const lines = Object.keys(environment)
        .sort()
        .map((key) => `${key}: ${JSON.stringify(String(environment[key]))}`);
      fs.writeFileSync(envFile, `${lines.join('\n')}\n`);
      args.push(`--env-vars-file=${envFile}`);
    } else {
      args.push('--clear-env-vars');
    }
    args.push('--quiet');
    return { args, environment: Object.keys(environment).sort(), secrets: secrets.map((s) => s.key), mode };
  }

  isDrain(fn) {
    return Boolean(this.settings.queue && this.settings.queue.enabled && fn.handler === 'drain');
  }

  async deploy() {
    const source = await this.sourceDir();
    const queue = this.settings.queue && this.settings.queue.enabled ? this.settings.queue : null;
    if (queue) queueSteps.ensureTopics(this, queue);
    for (const name of this.serverless.service.getAllFunctions()) {
      const fn = this.serverless.service.getFunction(name);
      const { args, environment, secrets, mode } = this.deployArgs(name, fn, source);
      this.log.notice(`Deploying ${this.functionName(name)} to Cloud Functions 2nd gen in ${this.region}`);
      this.log.notice(`  environment: ${environment.join(', ') || '(none)'}`);
      this.log.notice(`  secrets (${mode}): ${secrets.join(', ') || '(none)'}`);
      this.gcloud(args);
      const url = this.printUrls(name);
      if (queue && this.isDrain(fn)) queueSteps.scheduleDrain(this, queue, this.functionName(name), url);
    }
  }

  remove() {
    for (const name of this.serverless.service.getAllFunctions()) {
      this.log.notice(`Deleting ${this.functionName(name)}`);
      this.gcloud(['functions', 'delete', this.functionName(name), ...this.locationArgs(), '--quiet']);
    }
  }

  info() {
    for (const name of this.serverless.service.getAllFunctions()) this.printUrls(name);
  }

  printUrls(name) {
    const url = this.gcloud(
      [
        'functions',
        'describe',
        this.functionName(name),
        ...this.locationArgs(),
        '--format=value(serviceConfig.uri)',
      ],
      { capture: true }
    );
    const base = url.replace(/\/+$/, '');
    if (this.isDrain(this.serverless.service.getFunction(name))) {
      this.log.notice(`\n${this.functionName(name)}: ${base} (the queue's drain, called by Cloud Scheduler)`);
      return base;
    }
    this.log.notice(
      [
        '',
        `${this.functionName(name)}: ${base}`,
        `  FullStory webhook URL:      ${base}/fullstory`,
        `  FME impressions webhook:    ${base}/split/impressions?token=<SPLIT_IMPRESSIONS_TOKEN>`,
        `  Health check:               ${base}/healthz`,
      ].join('\n')
    );
    return base;
  }
}

module.exports = ServerlessGcpGen2;
