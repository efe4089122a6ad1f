// cors.mjs: a real browser (Chromium, driven by playwright-core) calls the
// API from pages on other origins and prints what the page could see.
// Usage: node cors.mjs API_URL ALLOWED_PAGE_URL DENIED_PAGE_URL TOKEN
import { chromium } from 'playwright-core';

const [api, allowed, denied, token] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const out = {};
try {
  for (const [name, page_url] of [['allowed', allowed], ['denied', denied]]) {
    const page = await browser.newPage();
    await page.goto(page_url);
    out[name] = await page.evaluate(async ({ api, token }) => {
      try {
        // Authorization and a JSON body make the browser send a preflight.
        const r = await fetch(api + '/api/collections/posts/records', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token },
          body: JSON.stringify({ title: 'web ' + Math.random().toString(36).slice(2, 10) }),
        });
        const body = await r.json();
        return { status: r.status, etag: r.headers.get('ETag'), seq: r.headers.get('Mantle-Seq'), id: body.id || '' };
      } catch (e) {
        return { error: String(e) };
      }
    }, { api, token });
    await page.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
