import { useState, type FormEvent } from "react";

import { post } from "../api";
import { ErrorBox } from "../ui";

export function Login({ onLoggedIn }: { onLoggedIn: () => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      await post("/v1/admin/auth/login", { email, password });
      onLoggedIn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="login" id="main">
      <h1>eventrelay</h1>
      <form onSubmit={submit} className="card" aria-label="Log in">
        <h2>Log in</h2>
        <ErrorBox error={error} />
        <label>
          Email
          <input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} autoFocus />
        </label>
        <label>
          Password
          <input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
        <p className="hint">
          No account yet? An admin invites you, or on the server: <code>eventrelay users create --email you@example.com --role owner</code>
        </p>
      </form>
    </main>
  );
}
