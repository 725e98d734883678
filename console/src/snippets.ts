// Ready-to-paste snippets for a source's write key: analytics.js, the Python and Node SDKs, curl.

export interface Snippet {
  id: string;
  label: string;
  code: string;
}

export function snippets(baseUrl: string, writeKey: string): Snippet[] {
  const host = baseUrl.replace(/\/+$/, "");
  const cdnHost = host.replace(/^https?:\/\//, "");
  const basic = typeof btoa === "function" ? btoa(`${writeKey}:`) : "";
  return [
    {
      id: "analytics-js",
      label: "analytics.js",
      code: `import { AnalyticsBrowser } from "@segment/analytics-next";

export const analytics = AnalyticsBrowser.load(
  { writeKey: "${writeKey}", cdnURL: "${host}" },
  { integrations: { "Segment.io": { apiHost: "${cdnHost}/v1", protocol: "${host.startsWith("https") ? "https" : "http"}" } } },
);

analytics.track("Order Completed", { revenue: 42 });`,
    },
    {
      id: "python",
      label: "Python",
      code: `# pip install segment-analytics-python
import segment.analytics as analytics

analytics.write_key = "${writeKey}"
analytics.host = "${host}"

analytics.track("user-42", "Order Completed", {"revenue": 42})
analytics.flush()`,
    },
    {
      id: "node",
      label: "Node.js",
      code: `// npm install @segment/analytics-node
import { Analytics } from "@segment/analytics-node";

const analytics = new Analytics({ writeKey: "${writeKey}", host: "${host}" });

analytics.track({ userId: "user-42", event: "Order Completed", properties: { revenue: 42 } });
await analytics.closeAndFlush();`,
    },
    {
      id: "curl",
      label: "curl",
      code: `curl -X POST ${host}/v1/track \\
  -H "Authorization: Basic ${basic}" \\
  -H "Content-Type: application/json" \\
  -d '{"userId": "user-42", "event": "Order Completed", "properties": {"revenue": 42}}'`,
    },
  ];
}
