// The campaign state machine as one declarative table, like the test lifecycle (test-lifecycle.ts). Pure: no IO.
// Routes read their scopes from it, CampaignsService applies it, docs/campaigns.md renders it, the tests walk it.

import { Access, type Role } from '../policy';


export const campaignStatuses = ['draft', 'active', 'completed'] as const;
export type CampaignStatus = typeof campaignStatuses[number];

export const campaignTypes = ['purple_team', 'adversary_emulation', 'regression', 'threat_actor'] as const;
export type CampaignType = typeof campaignTypes[number];

export const campaignActions = ['activate', 'complete'] as const;
export type CampaignAction = typeof campaignActions[number];

// What a transition checks before the move (each refusal a 409 with its own code)
export type CampaignCheck = 'has-tests';

export interface CampaignTransition {
    from: readonly CampaignStatus[];
    to: CampaignStatus;
    roles: readonly Role[];
    checks: readonly CampaignCheck[];
    stamp: 'activated_at' | 'completed_at';
    emits: 'campaign.completed' | null;
    description: string;
}

export const campaignLifecycle = {
    activate: {
        from: ['draft'], to: 'active', roles: Access.leads, checks: ['has-tests'], stamp: 'activated_at', emits: null,
        description: 'The campaign starts: it must hold at least one test'
    },
    complete: {
        from: ['active'], to: 'completed', roles: Access.redLead, checks: [], stamp: 'completed_at', emits: 'campaign.completed',
        description: 'The campaign ends (whatever state its tests are in); its metadata is frozen but for its notes; emits campaign.completed'
    }
} as const satisfies Record<CampaignAction, CampaignTransition>;


// Changes that are not transitions: in which statuses they are allowed, and by whom
export const campaignEditActions = ['metadata', 'notes', 'schedule', 'add-test', 'remove-test'] as const;
export type CampaignEditAction = typeof campaignEditActions[number];

export interface CampaignEditRule {
    statuses: readonly CampaignStatus[];
    roles: readonly Role[];
    fields: readonly string[];
    description: string;
}

export const campaignEdits = {
    'metadata': { statuses: ['draft', 'active'], roles: Access.leads, fields: ['name', 'description', 'type', 'threat_actor_id', 'blind'], description: 'PATCH /campaigns/{id}: name, description, type, threat actor, blind mode' },
    'notes': { statuses: campaignStatuses, roles: Access.leads, fields: ['notes'], description: 'PATCH /campaigns/{id}: the notes, in every status (a completed campaign keeps its lessons)' },
    'schedule': { statuses: ['draft', 'active'], roles: Access.leads, fields: ['start_date', 'end_date'], description: 'PATCH /campaigns/{id}/schedule' },
    'add-test': { statuses: ['draft', 'active'], roles: Access.leads, fields: [], description: 'POST /campaigns/{id}/tests: an existing test, or new ones from a template' },
    'remove-test': { statuses: ['draft', 'active'], roles: Access.leads, fields: [], description: 'DELETE /campaigns/{id}/tests/{ctid}: the membership only, never the test' }
} as const satisfies Record<CampaignEditAction, CampaignEditRule>;


export type CampaignRefusal = { kind: 'state' } | { kind: 'check'; check: CampaignCheck };


// Is the move legal? `facts` are what the checks look at
export const decideCampaign = (action: CampaignAction, status: CampaignStatus, facts: { tests: number }): { ok: true; to: CampaignStatus } | { ok: false; refusal: CampaignRefusal } => {

    const transition: CampaignTransition = campaignLifecycle[action];
    if (!transition.from.includes(status)) {
        return { ok: false, refusal: { kind: 'state' } };
    }

    for (const check of transition.checks) {
        if (check === 'has-tests' && facts.tests === 0) {
            return { ok: false, refusal: { kind: 'check', check } };
        }
    }

    return { ok: true, to: transition.to };
};


// Which edit rule each field of a PATCH falls under; the edit is allowed when every touched rule allows the status
export const editsFor = (fields: readonly string[]): CampaignEditAction[] => {

    return (['metadata', 'notes', 'schedule'] as const).filter((action) => campaignEdits[action].fields.some((field) => fields.includes(field)));
};


export const editAllowed = (action: CampaignEditAction, status: CampaignStatus): boolean => (campaignEdits[action].statuses as readonly string[]).includes(status);


// "An active campaign past its end date is overdue" (the alerts issue reads this): the day after end_date, in UTC
export const isOverdue = (campaign: { status: CampaignStatus; end_date: string | null }, today: string = new Date().toISOString().slice(0, 10)): boolean => campaign.status === 'active' && campaign.end_date !== null && campaign.end_date < today;

// The same rule in SQL, over a table aliased `campaigns`
export const overdueSql = 'campaigns.status = \'active\' and campaigns.end_date < (now() at time zone \'utc\')::date';
