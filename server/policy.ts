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
    reports: [Role.redLead, Role.blueLead, Role.admin, Role.viewer],
    // osint (issue 14): OSINT feeds, imports and prevalence (RL,BL,A)
    osint: [Role.redLead, Role.blueLead, Role.admin],
    // jira (issue 14): the reference's /jira row (RL,BL,A); its configuration is the `jira` setting (A)
    jira: [Role.redLead, Role.blueLead, Role.admin]
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


// The one visibility rule of tests (domain.md Decisions), and of everything that exposes a test's fields: its
// evidence, timeline, notifications, templates copied from it, the test lists and counts of other modules.
// `restricted` tests are for A, the leads and the test's assignees; `confidential` ones are hidden from V.
// The SQL form is the `visibleTo` modifier of the Test model, built from testAccess; canSeeTest is the same rule
// for a row already in hand.

export type Classification = 'public' | 'internal' | 'confidential' | 'restricted';

export interface ClassifiedTest {
    data_classification: Classification;
    red_assignee_id: string | null;
    blue_assignee_id: string | null;
}

// null: every test. Otherwise the classifications the actor sees, plus the restricted tests assigned to them.
export const testAccess = (actor: Actor): { classifications: Classification[]; assignee: string | null } | null => {

    if (isLead(actor)) {
        return null;
    }

    return { classifications: actor.role === Role.viewer ? ['public', 'internal'] : ['public', 'internal', 'confidential'], assignee: actor.id };
};


export const canSeeTest = (actor: Actor, test: ClassifiedTest): boolean => {

    const access = testAccess(actor);
    if (!access) {
        return true;
    }

    return access.classifications.includes(test.data_classification) ||
        (access.assignee !== null && test.data_classification === 'restricted' && (test.red_assignee_id === access.assignee || test.blue_assignee_id === access.assignee));
};


// Whom a copy readable by every role (a test template) must be visible to: a viewer assigned to nothing
export const everyReader: Actor = Object.freeze({ id: null, role: Role.viewer });


// campaigns (issue 10): blind mode (docs/campaigns.md "Blind mode"). A test of a blind campaign hides what red runs
// from the blue team until red submits (submit-red): its procedure, command, tool, and the template they came from.
// `blind` is a column of the test, kept by triggers on campaign_tests and campaigns.

export const blindFields = ['procedure', 'command', 'tool', 'template_id'] as const;

export const blindStates: readonly string[] = ['draft', 'red_executing'];

export interface BlindableTest {
    state: string;
    blind: boolean;
}

export const hidesRedFrom = (actor: Actor, test: BlindableTest): boolean => test.blind && blindStates.includes(test.state) && (actor.role === Role.blueLead || actor.role === Role.blueTech);

// The test as the actor may read it: the blind fields blanked, on the instance about to be answered, when the rule
// hides them (never on one that is written back)
export const blindTo = <T extends BlindableTest>(actor: Actor, test: T): T => {

    if (hidesRedFrom(actor, test)) {
        for (const field of blindFields) {
            (test as Record<string, unknown>)[field] = null;
        }
    }

    return test;
};


// sso (issue 15): the explicit order of privilege, most privileged first. When several of a user's identity-provider
// groups map to roles, the first of these wins (the two leads are peers; red_lead comes first by this order alone).
export const rolesByPrivilege: readonly Role[] = [Role.admin, Role.redLead, Role.blueLead, Role.redTech, Role.blueTech, Role.viewer];

export const mostPrivileged = (candidates: readonly Role[]): Role | undefined => rolesByPrivilege.find((role) => candidates.includes(role));
