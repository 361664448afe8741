'use strict';

/*
 * serverless-local-http-api: give every function that has a Function URL (`url: true`) a catch-all
 * `httpApi` event, only while `serverless offline` runs.
 *
 * serverless-offline does not emulate Function URLs; it does emulate HTTP APIs, whose payload 2.0 is the one
 * Function URLs send. The event is added in the offline command's own lifecycle, after the configuration was
 * validated and outside `package` and `deploy`, so it can never reach a shipped stack, whatever the stage.
 */

class ServerlessLocalHttpApi {
  constructor(serverless) {
    this.serverless = serverless;
    const add = () => this.addLocalRoutes();
    this.hooks = {
      'before:offline:start': add, // `serverless offline`
      'before:offline:start:init': add, // `serverless offline start`
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
}

module.exports = ServerlessLocalHttpApi;
