'use strict';

/*
 * serverless-local-http-api: make `serverless offline` serve the Lambda as its Function URL would.
 *
 * 1. Routes. serverless-offline does not emulate Function URLs; it does emulate HTTP APIs, whose payload 2.0 is
 *    the one Function URLs send. Every function that has a Function URL (`url: true`) gets a catch-all `httpApi`
 *    event, added in the offline command's own lifecycle, after the configuration was validated and outside
 *    `package` and `deploy`, so it can never reach a shipped stack, whatever the stage.
 * 2. Bodies byte for byte. serverless-offline decodes every request body as UTF-8 text unless its Content-Type is
 *    application/octet-stream or multipart/form-data, so a gzipped impressions webhook sent as application/json
 *    or application/gzip reached the function with its bytes replaced (400 invalid_json). While offline runs,
 *    every request is read as binary: the function gets the exact bytes, base64-encoded with isBase64Encoded,
 *    and the original Content-Type header (the payload 2.0 event is built from the raw headers).
 */

const BINARY = 'application/octet-stream';

class ServerlessLocalHttpApi {
  constructor(serverless) {
    this.serverless = serverless;
    const start = () => {
      this.addLocalRoutes();
      this.readBodiesAsBinary();
    };
    this.hooks = {
      'before:offline:start': start, // `serverless offline`
      'before:offline:start:init': start, // `serverless offline start`
    };
  }

  addLocalRoutes() {
    const { service } = this.serverless;
    for (const name of service.getAllFunctions()) {
      const fn = service.getFunction(name);
      if (!fn.url) continue;
      fn.events = fn.events || [];
      if (!fn.events.some((event) => event.httpApi)) fn.events.push({ httpApi: '*' });
    }
  }

  readBodiesAsBinary() {
    // The hapi that serverless-offline imports: resolved from the service, as serverless-offline resolves it.
    const hapiPath = require.resolve('@hapi/hapi', { paths: [this.serverless.serviceDir || process.cwd()] });
    const hapi = require(hapiPath);
    const prototype = Object.getPrototypeOf(hapi.server({ autoListen: false }));
    if (prototype.start.fs2splitBinaryBodies) return;
    const start = prototype.start;
    prototype.start = function startWithBinaryBodies(...args) {
      // serverless-offline picks the body's decoding from request.headers; the event keeps the raw headers.
      this.ext('onRequest', (request, h) => {
        request.headers['content-type'] = BINARY;
        return h.continue;
      });
      return start.apply(this, args);
    };
    prototype.start.fs2splitBinaryBodies = true;
  }
}

module.exports = ServerlessLocalHttpApi;
