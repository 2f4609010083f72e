// Pages with nothing live of their own (errors): the shared header and the event stream.

import { initHeader } from "./header.js";
import { initKeys } from "./keys.js";
import { start } from "./live.js";

initHeader();
initKeys();
start();
