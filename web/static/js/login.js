// The login page: only the shared header's language switch (no event stream before login).

import { initHeader } from "./header.js";

initHeader();
