// Parley's shared page behaviour. Loaded with defer; no inline scripts (the CSP forbids them).
"use strict";
