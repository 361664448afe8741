// Drives headless Chromium (the system's, by path: no browser download) through the recipe's page scenarios
// and prints one JSON object for the pytest test to judge.
//   node drive.mjs <chromium executable> <page base URL> <fresh user-data dir>
// FullStory's script request is held open (never answered), so every FS call stays in the snippet's queue;
// the "blocked" page has it fail instead, as an ad blocker would.
import { chromium } from 'playwright-core';

const [executablePath, base, userDataDir] = process.argv.slice(2);
const FULLSTORY_SCRIPT = 'https://edge.fullstory.com/**';
// A closed network: nothing but the loopback page may be fetched.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: ARGS,
  timeout: 60_000,
});
// Ends the browser itself well before pytest's own timeout would kill only this process and orphan Chromium.
const deadline = setTimeout(() => {
  process.stderr.write('drive.mjs: the browser run took over 200 s\n');
  context.close().finally(() => process.exit(1));
}, 200_000);
const held = [];
const scriptRequests = [];
await context.route(FULLSTORY_SCRIPT, (route) => {
  scriptRequests.push(route.request().url());
  held.push(route); // never fulfilled: fs.js stays "loading"
});
await context.route((url) => !url.href.startsWith(base) && !url.href.startsWith('https://edge.fullstory.com/'), (route) =>
  route.abort('blockedbyclient'),
);

const result = { scriptRequests, runs: {} };

async function openPage() {
  const page = await context.newPage();
  const console = [];
  // Everything: the FME SDK logs its errors with console.log ("[ERROR] ...").
  page.on('console', (message) => console.push(message.text()));
  page.on('pageerror', (error) => console.push(`pageerror: ${error.message}`));
  return { page, console };
}

async function run(name, tab, url) {
  // Not "load": the held fs.js request keeps the page from ever finishing loading.
  if (url) await tab.page.goto(base + url, { waitUntil: 'domcontentloaded' });
  else await tab.page.reload({ waitUntil: 'domcontentloaded' });
  const outcome = await tab.page.evaluate(() => window.scenario());
  result.runs[name] = { ...outcome, console: [...tab.console] };
  tab.console.length = 0;
}

try {
  for (const form of ['classic', 'module']) {
    const tab = await openPage();
    await run(form, tab, `/${form}.html?form=${form}`);
    await run(`${form}_reloaded`, tab);
    await tab.page.close();
  }

  const session = await openPage();
  await run('session', session, '/classic.html?form=classic&once=session');
  await run('session_reloaded', session);
  const otherTab = await openPage();
  await run('session_other_tab', otherTab, '/classic.html?form=classic&once=session');
  await session.page.close();
  await otherTab.page.close();

  const throwing = await openPage();
  await run('throwing_fs', throwing, '/classic.html?form=classic&fs=throws');
  await throwing.page.close();

  const blocked = await openPage();
  await blocked.page.route(FULLSTORY_SCRIPT, (route) => route.abort('blockedbyclient'));
  await run('blocked', blocked, '/module.html?form=module');
  await blocked.page.close();
} finally {
  clearTimeout(deadline);
  await context.close();
}
process.stdout.write(JSON.stringify(result));
