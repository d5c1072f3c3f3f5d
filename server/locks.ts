// Every PostgreSQL advisory lock key Aegis takes, declared once: two features that shared a key by accident would
// wait on each other (the first admin and custom technique ids once did). Add a key here, never a literal elsewhere.
export const LockKey = {
    migrations: 736_421_901,
    firstAdmin: 736_421_902,
    attackImport: 736_421_903,
    customTechniqueId: 736_421_904,
    coverage: 736_421_905,
    customDataComponentId: 736_421_906,
    // Held by every change that can leave fewer active admins (a demotion, a deactivation)
    // with a second key per consumer (hashtext of its name): one relay at a time delivers to a consumer
    eventRelay: 736_421_907,
    // Held by every change that can leave fewer active admins (a demotion, a deactivation)
    activeAdmins: 736_421_908,
    // scores (issue 12: scores, risk, compliance): one risk recompute at a time; one compliance import at a time
    riskRecompute: 736_421_930,
    complianceImport: 736_421_931,
    // detection (issue 11): one revalidation-queue generation at a time
    revalidationQueue: 736_421_960,
    // sso (issue 15): with a second key (hashtext of provider and subject), one first sign-in of an identity at a time
    ssoIdentity: 736_421_990,
    // osint (issue 14): one feed import (or feed deletion) at a time, so that two never create the same actor
    osintImport: 736_421_980,
    // jira (issue 14): one issue creation per test at a time (the Jira call happens outside the transaction)
    jiraCreate: 736_421_970
} as const;

export type LockKey = typeof LockKey[keyof typeof LockKey];
