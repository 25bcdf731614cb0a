// Starts the app. A file of its own (not an inline script) so the server's CSP can stay at
// `script-src 'self' 'wasm-unsafe-eval'`.
import init from './anvil_spa.js';

init({ module_or_path: '/anvil_spa_bg.wasm' });
