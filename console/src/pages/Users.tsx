// Users (invite, role, deactivate, reset) and API tokens (owner).

import { useState, type FormEvent } from "react";

import { del, get, patch, post } from "../api";
import { atLeast } from "../roles";
import type { Me, Page, Role, Token, User } from "../types";
import { CopyButton, ErrorBox, Section, useLoad, when } from "../ui";

const ROLES: Role[] = ["viewer", "editor", "admin", "owner"];

function OneTime({ label, value }: { label: string; value: string }) {
  return (
    <div className="notice" role="status">
      <p>{label} (shown once):</p>
      <code className="key">{value}</code> <CopyButton text={value} />
    </div>
  );
}

/** Runs an action against the API: the last error (cleared by the next try), and `reload` after
 * each success. */
function useActions(reload: () => void): [unknown, (action: () => Promise<unknown>) => Promise<void>] {
  const [error, setError] = useState<unknown>(null);
  const run = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
      reload();
    } catch (err) {
      setError(err);
    }
  };
  return [error, run];
}

function RoleField({ roles, value, onChange }: { roles: Role[]; value: Role; onChange: (role: Role) => void }) {
  return (
    <label>
      Role
      <select value={value} onChange={(e) => onChange(e.target.value as Role)}>
        {roles.map((r) => (
          <option key={r}>{r}</option>
        ))}
      </select>
    </label>
  );
}

function NameField({ value, onChange }: { value: string; onChange: (name: string) => void }) {
  return (
    <label>
      Name
      <input required value={value} onChange={(e) => onChange(e.target.value)} />
    </label>
  );
}

function UsersSection({ me }: { me: Me }) {
  const users = useLoad(() => get<Page<User>>("/v1/admin/users?limit=100"), []);
  const [form, setForm] = useState({ email: "", name: "", role: "viewer" as Role });
  const [error, run] = useActions(users.reload);
  const [link, setLink] = useState<string | null>(null);
  const roles = ROLES.filter((r) => atLeast(me.role, r === "owner" ? "owner" : "admin"));
  const withLink = (created: unknown) => {
    const path = (created as { setup_path: string }).setup_path;
    setLink(window.location.origin + path);
  };
  const invite = (e: FormEvent) => {
    e.preventDefault();
    run(async () => withLink(await post("/v1/admin/users", form)));
  };
  return (
    <Section title="Users">
      <ErrorBox error={users.error ?? error} />
      {link && <OneTime label="Setup link for the user: send it to them" value={link} />}
      <table>
        <thead>
          <tr>
            <th scope="col">Email</th>
            <th scope="col">Role</th>
            <th scope="col">Status</th>
            <th scope="col">Last login</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {users.data?.data.map((u) => {
            const mine = u.id === me.id;
            const manageable = !mine && (u.role !== "owner" || me.role === "owner");
            return (
              <tr key={u.id}>
                <td>
                  {u.email} <span className="muted">{u.name !== u.email ? u.name : ""}</span>
                </td>
                <td>
                  {manageable ? (
                    <select aria-label={`Role of ${u.email}`} value={u.role} onChange={(e) => run(() => patch(`/v1/admin/users/${u.id}`, { role: e.target.value }))}>
                      {roles.map((r) => (
                        <option key={r}>{r}</option>
                      ))}
                    </select>
                  ) : (
                    u.role
                  )}
                </td>
                <td>{u.status}</td>
                <td>{when(u.last_login_at)}</td>
                <td>
                  {manageable && (
                    <>
                      {u.status === "deactivated" ? (
                        <button type="button" className="small" onClick={() => run(() => post(`/v1/admin/users/${u.id}/reactivate`))}>
                          Reactivate
                        </button>
                      ) : (
                        <button type="button" className="small" onClick={() => run(() => post(`/v1/admin/users/${u.id}/deactivate`))}>
                          Deactivate
                        </button>
                      )}
                      {u.status !== "deactivated" && (
                        <button type="button" className="small" onClick={() => run(async () => withLink(await post(`/v1/admin/users/${u.id}/reset-password`)))}>
                          Reset password
                        </button>
                      )}
                    </>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <form className="inline" onSubmit={invite} aria-label="Invite a user">
        <label>
          Email
          <input type="email" required value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} />
        </label>
        <NameField value={form.name} onChange={(name) => setForm({ ...form, name })} />
        <RoleField roles={roles} value={form.role} onChange={(role) => setForm({ ...form, role })} />
        <button type="submit">Invite</button>
      </form>
    </Section>
  );
}

function TokensSection() {
  const tokens = useLoad(() => get<Page<Token>>("/v1/admin/tokens?limit=100"), []);
  const [form, setForm] = useState({ name: "", role: "viewer" as Role });
  const [error, run] = useActions(tokens.reload);
  const [secret, setSecret] = useState<string | null>(null);
  const create = (e: FormEvent) => {
    e.preventDefault();
    run(async () => setSecret((await post<{ token: string }>("/v1/admin/tokens", form)).token));
  };
  const revoke = (id: string) => run(() => del(`/v1/admin/tokens/${id}`));
  return (
    <Section title="API tokens (for machines)">
      <ErrorBox error={tokens.error ?? error} />
      {secret && <OneTime label="The new token" value={secret} />}
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Role</th>
            <th scope="col">Prefix</th>
            <th scope="col">Last used</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {tokens.data?.data.map((t) => (
            <tr key={t.id}>
              <td>{t.name}</td>
              <td>{t.role}</td>
              <td>
                <code>{t.prefix}…</code>
              </td>
              <td>{when(t.last_used_at)}</td>
              <td>
                {t.revoked_at ? (
                  `revoked ${when(t.revoked_at)}`
                ) : (
                  <button type="button" className="small" onClick={() => revoke(t.id)}>
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="inline" onSubmit={create} aria-label="Create a token">
        <NameField value={form.name} onChange={(name) => setForm({ ...form, name })} />
        <RoleField roles={ROLES} value={form.role} onChange={(role) => setForm({ ...form, role })} />
        <button type="submit">Create token</button>
      </form>
    </Section>
  );
}

function PasswordSection() {
  const [form, setForm] = useState({ current_password: "", new_password: "" });
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await post("/v1/admin/auth/password", form);
      setDone(true);
      setError(null);
      setForm({ current_password: "", new_password: "" });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Section title="Your password">
      <ErrorBox error={error} />
      {done && <p role="status">Password changed; your other sessions ended.</p>}
      <form className="inline" onSubmit={submit}>
        <label>
          Current password
          <input type="password" autoComplete="current-password" required value={form.current_password} onChange={(e) => setForm({ ...form, current_password: e.target.value })} />
        </label>
        <label>
          New password
          <input type="password" autoComplete="new-password" required minLength={12} value={form.new_password} onChange={(e) => setForm({ ...form, new_password: e.target.value })} />
        </label>
        <button type="submit">Change password</button>
      </form>
    </Section>
  );
}

export function Users({ me }: { me: Me }) {
  return (
    <>
      <h1>Users &amp; tokens</h1>
      {me.kind === "user" && <PasswordSection />}
      {atLeast(me.role, "admin") && <UsersSection me={me} />}
      {atLeast(me.role, "owner") && <TokensSection />}
    </>
  );
}
