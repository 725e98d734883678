import type { Role } from "./types";

const ORDER: Role[] = ["viewer", "editor", "admin", "owner"];

/** Whether `role` may do what `required` may (roles are ordered, as on the server). */
export function atLeast(role: Role | undefined, required: Role): boolean {
  return role !== undefined && ORDER.indexOf(role) >= ORDER.indexOf(required);
}
