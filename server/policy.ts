// Roles, the role sets the API reference names, and the ownership predicates that services call.

export const Role = {
    admin: 'admin',
    redLead: 'red_lead',
    blueLead: 'blue_lead',
    redTech: 'red_tech',
    blueTech: 'blue_tech',
    viewer: 'viewer'
} as const;

export type Role = typeof Role[keyof typeof Role];

export const roles: readonly Role[] = Object.values(Role);


// The sets used in api-reference.md; routes declare one of these as auth.access.scope.
export const Access = {
    any: [...roles],
    admin: [Role.admin],
    allExceptViewer: roles.filter((role) => role !== Role.viewer),
    leads: [Role.redLead, Role.blueLead, Role.admin],
    red: [Role.redLead, Role.redTech, Role.admin],
    blue: [Role.blueLead, Role.blueTech, Role.admin],
    redLead: [Role.redLead, Role.admin],
    blueLead: [Role.blueLead, Role.admin],
    reports: [Role.redLead, Role.blueLead, Role.admin, Role.viewer]
} as const satisfies Record<string, readonly Role[]>;


export interface Actor {
    id: string | null;                      // null for the system (worker, bootstrap)
    role: Role | 'system';
    ip?: string | undefined;
    userAgent?: string | undefined;
    requestId?: string | undefined;
}


export const systemActor: Actor = Object.freeze({ id: null, role: 'system' });


export const isAdmin = (actor: Actor): boolean => actor.role === Role.admin || actor.role === 'system';


export const isLead = (actor: Actor): boolean => actor.role === Role.redLead || actor.role === Role.blueLead || isAdmin(actor);


// "Own or A": the owner of a row, or an admin.
export const ownsOrAdmin = (actor: Actor, ownerId: string | null | undefined): boolean => isAdmin(actor) || (actor.id !== null && actor.id === ownerId);


// "Own or RL,BL,A"
export const ownsOrLead = (actor: Actor, ownerId: string | null | undefined): boolean => isLead(actor) || (actor.id !== null && actor.id === ownerId);
