// The console: a hash router over pages, the signed-in caller, and the navigation.

import { useCallback, useEffect, useState } from "react";

import { get, onLoggedOut, post } from "./api";
import { Audit } from "./pages/Audit";
import { Consent } from "./pages/Consent";
import { IntegrationDetail } from "./pages/IntegrationDetail";
import { IntegrationEdit } from "./pages/IntegrationEdit";
import { Integrations } from "./pages/Integrations";
import { Live } from "./pages/Live";
import { Login } from "./pages/Login";
import { OrganizationRules } from "./pages/Rules";
import { Setup } from "./pages/Setup";
import { Sources } from "./pages/Sources";
import { Users } from "./pages/Users";
import { atLeast } from "./roles";
import type { Me } from "./types";

function useHash(): string {
  const [hash, setHash] = useState(window.location.hash || "#/sources");
  useEffect(() => {
    const update = () => setHash(window.location.hash || "#/sources");
    window.addEventListener("hashchange", update);
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return hash;
}

const NAV: { href: string; label: string; role: Me["role"] }[] = [
  { href: "#/sources", label: "Sources", role: "viewer" },
  { href: "#/integrations", label: "Integrations", role: "viewer" },
  { href: "#/live", label: "Live debugger", role: "editor" },
  { href: "#/consent", label: "Consent", role: "viewer" },
  { href: "#/rules", label: "Organisation rules", role: "viewer" },
  { href: "#/audit", label: "Audit log", role: "admin" },
  { href: "#/users", label: "Users & tokens", role: "admin" },
];

export function App() {
  const hash = useHash();
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const loadMe = useCallback(() => {
    get<Me>("/v1/admin/auth/me")
      .then(setMe)
      .catch(() => setMe(null));
  }, []);
  useEffect(() => {
    onLoggedOut(() => setMe(null));
    loadMe();
  }, [loadMe]);

  const [path, query] = hash.slice(1).split("?");
  if (path === "/setup") return <Setup token={new URLSearchParams(query).get("token") ?? ""} />;
  if (me === undefined) return <p className="loading">Loading…</p>;
  if (me === null) return <Login onLoggedIn={loadMe} />;

  const logout = async () => {
    await post("/v1/admin/auth/logout").catch(() => undefined);
    setMe(null);
  };
  const parts = path.split("/").filter(Boolean);
  let page;
  switch (parts[0]) {
    case "integrations":
      if (parts[1] === "new") page = <IntegrationEdit me={me} />;
      else if (parts[1] && parts[2] === "edit") page = <IntegrationEdit me={me} id={parts[1]} />;
      else if (parts[1]) page = <IntegrationDetail me={me} id={parts[1]} />;
      else page = <Integrations me={me} />;
      break;
    case "live":
      page = <Live sourceId={parts[1]} />;
      break;
    case "consent":
      page = <Consent me={me} />;
      break;
    case "rules":
      page = <OrganizationRules me={me} />;
      break;
    case "audit":
      page = <Audit />;
      break;
    case "users":
      page = <Users me={me} />;
      break;
    default:
      page = <Sources me={me} />;
  }
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">eventrelay</span>
        <nav aria-label="Main">
          {NAV.filter((n) => atLeast(me.role, n.role)).map((n) => (
            <a key={n.href} href={n.href} aria-current={hash.startsWith(n.href) ? "page" : undefined}>
              {n.label}
            </a>
          ))}
        </nav>
        <span className="who">
          {me.name} <span className="role">({me.role})</span>
          <button type="button" className="small" onClick={logout}>
            Log out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </div>
  );
}
