// The test page's script, bundled by esbuild: the official FullStory snippet as @fullstory/browser injects it,
// the FME JavaScript SDK's browser factory in localhost mode, and the recipe in the form the URL asks for
// (?form=classic: the global the classic script defined; ?form=module: the ES module, imported by the bundler).
import { FullStory, init } from '@fullstory/browser';
import { SplitFactory } from '@splitsoftware/splitio/client';
import { createFullStoryImpressionListener as fromModule } from '../../../examples/browser/split-evaluation-listener.mjs';

const params = new URLSearchParams(window.location.search);
const KEY = 'customer-123';

init({ orgId: 'o-1A2B3C-na1' });
if (params.get('fs') === 'throws') {
  // FullStory itself failing: every call to the page's FS throws.
  window.FS = () => {
    throw new Error('FullStory failed');
  };
}

function nextTick() {
  return new Promise((resolve) => setTimeout(resolve, 50));
}

// Runs the evaluations and reports what the SDK handed the listener, what it returned and what reached
// FullStory's queue (the snippet keeps every call in FS.q while fs.js has not loaded).
window.scenario = async function scenario() {
  const create = params.get('form') === 'classic' ? window.createFullStoryImpressionListener : fromModule;
  const recipe = create({ environmentName: 'Production', once: params.get('once') || undefined });
  const seen = [];
  try {
    FullStory('setIdentity', { uid: KEY });
  } catch (failed) {
    // The fs=throws page: only the recipe's calls are under test there.
  }

  const features = { new_checkout: 'on', banner: { treatment: 'blue', config: '{"size":2}' } };
  const factory = SplitFactory({
    core: { authorizationKey: 'localhost', key: KEY },
    features,
    scheduler: { offlineRefreshRate: 1 }, // seconds: how soon the changed treatment is picked up
    debug: 'ERROR', // so a listener that throws shows up in the console the test reads
    impressionListener: {
      logImpression(data) {
        seen.push(JSON.parse(JSON.stringify(data))); // what the SDK handed over, as the test's reference
        recipe.logImpression(data);
      },
    },
  });
  const client = factory.client();
  await client.whenReady();

  const treatments = [];
  for (let i = 0; i < 3; i += 1) treatments.push(client.getTreatment('new_checkout'));
  const both = client.getTreatments(['new_checkout', 'banner']);
  treatments.push(both.new_checkout, both.banner, client.getTreatmentWithConfig('banner').treatment);

  const updated = new Promise((resolve) => client.once(client.Event.SDK_UPDATE, resolve));
  factory.settings.features.new_checkout = 'off';
  await updated;
  for (let i = 0; i < 2; i += 1) treatments.push(client.getTreatment('new_checkout'));

  await nextTick(); // the SDK calls the listener in a timeout after each evaluation
  await client.destroy();
  const queue = window.FS && window.FS.q ? window.FS.q.map((call) => [call[0], call[1]]) : null;
  return JSON.parse(JSON.stringify({ treatments, seen, queue }));
};
