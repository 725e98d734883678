import { useState, type FormEvent } from "react";

import { post } from "../api";
import { ErrorBox } from "../ui";

/** The one-time link of an invitation or a reset: choose a password. */
export function Setup({ token }: { token: string }) {
  const [password, setPassword] = useState("");
  const [again, setAgain] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (password !== again) {
      setError(new Error("The two passwords differ."));
      return;
    }
    try {
      await post("/v1/admin/auth/setup", { token, password });
      setDone(true);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <main className="login" id="main">
      <h1>eventrelay</h1>
      {done ? (
        <div className="card">
          <p>Your password is set.</p>
          <a href="#/sources">Log in</a>
        </div>
      ) : (
        <form onSubmit={submit} className="card" aria-label="Choose a password">
          <h2>Choose a password</h2>
          <ErrorBox error={error} />
          <label>
            New password (12 characters or more)
            <input type="password" autoComplete="new-password" required minLength={12} value={password} onChange={(e) => setPassword(e.target.value)} />
          </label>
          <label>
            Repeat it
            <input type="password" autoComplete="new-password" required value={again} onChange={(e) => setAgain(e.target.value)} />
          </label>
          <button type="submit">Set password</button>
        </form>
      )}
    </main>
  );
}
