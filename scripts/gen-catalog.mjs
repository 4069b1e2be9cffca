// Regenerates shared/models/webllm-prebuilt.json from the installed @mlc-ai/web-llm's prebuilt list,
// so the coordinator and the page share WebLLM's defaults without bundling WebLLM into the Worker.
// Run after upgrading @mlc-ai/web-llm: `node scripts/gen-catalog.mjs`. A unit test fails when the
// file and the installed package disagree.
import { writeFileSync } from "node:fs";
import { prebuiltAppConfig } from "@mlc-ai/web-llm";
import { fromWebLLMRecord } from "./catalog-record.mjs";

const records = prebuiltAppConfig.model_list
  // Language and embedding models; vision models (2) are not served.
  .filter((r) => r.model_type === undefined || r.model_type === 0 || r.model_type === 1)
  .map(fromWebLLMRecord);
writeFileSync(
  new URL("../shared/models/webllm-prebuilt.json", import.meta.url),
  JSON.stringify(records, null, 1) + "\n",
);
console.log(`wrote ${records.length} model records`);
