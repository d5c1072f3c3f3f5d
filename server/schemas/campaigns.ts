import Joi from 'joi';

import { campaignStatuses, campaignTypes } from '../services/campaign-lifecycle';
import type { CampaignAddTests, CampaignCreate, CampaignFilters, CampaignSchedule, CampaignUpdate, GenerateOptions } from '../services/campaigns';
import { detectionOutcomes, testStates } from '../services/test-lifecycle';

import { navigatorLayerFile } from './heatmap';
import { listQuery, pageOf, text, timestamp, uuid } from './common';
import { fromTemplate, platform, techniqueId, test } from './tests';
import { day } from './worklogs';


const status = Joi.string().valid(...campaignStatuses);
const type = Joi.string().valid(...campaignTypes);
// A calendar date (2026-02-30 is not one)
const calendarDay = day.custom((value: string, helpers) => {

    const parsed = new Date(`${value}T00:00:00Z`);
    return Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== value ? helpers.message({ custom: '{{#label}} is not a calendar date' }) : value;
});
const nullableDay = calendarDay.allow(null);
const coverageStatus = Joi.string().valid('untested', 'not_covered', 'partial', 'covered');

const metadata = {
    name: text(200).min(1),
    description: text(10_000).allow(null, ''),
    type,
    threat_actor_id: uuid.allow(null),
    notes: text(20_000).allow(null, ''),
    // Blind mode: the blue team does not see what red runs until submit-red (docs/campaigns.md)
    blind: Joi.boolean()
};

const schedule = {
    start_date: nullableDay,
    end_date: nullableDay
};

export const campaignCreate = Joi.object<CampaignCreate, true>({
    ...metadata,
    name: metadata.name.required(),
    ...schedule
});

export const campaignUpdate = Joi.object<CampaignUpdate, true>(metadata).min(1);

export const campaignSchedule = Joi.object<CampaignSchedule, true>(schedule).min(1);

// An existing test, or new tests from a template (as POST /tests/from-template takes them, one template)
export const campaignAddTests = Joi.object<CampaignAddTests, true>({
    test_id: uuid,
    template_id: uuid,
    technique_ids: Joi.array().items(techniqueId).min(1).max(100).unique(),
    overrides: fromTemplate.extract('overrides') as Joi.ObjectSchema
}).xor('test_id', 'template_id').without('test_id', ['technique_ids', 'overrides']).label('CampaignAddTests');

export const campaignListQuery = listQuery(['created_at', 'updated_at', 'name', 'start_date', 'end_date', 'status'], {
    status: Joi.array().items(status).max(3).single(),
    type,
    threat_actor_id: uuid,
    overdue: Joi.boolean(),
    // The schedule overlaps [from, to]
    from: calendarDay,
    to: calendarDay,
    search: text(200).min(1)
}) as Joi.ObjectSchema<CampaignFilters>;

export const campaignTestParams = Joi.object({ id: uuid.required(), ctid: uuid.required() });

export const actorParams = Joi.object({ actor_id: uuid.required() });

const generate = {
    name: metadata.name,
    description: metadata.description,
    type,
    blind: metadata.blind,
    start_date: nullableDay,
    end_date: nullableDay,
    platforms: Joi.array().items(platform).min(1).max(20).unique().single(),
    coverage: Joi.array().items(coverageStatus).min(1).max(4).unique().single()
};

export const fromThreatActorPayload = Joi.object<GenerateOptions, true>(generate).label('CampaignFromThreatActor');

// from-layer: the options ride in the query string, the body is the layer file as the Navigator saves it
export const fromLayerQuery = Joi.object<GenerateOptions & { min_score?: number }, true>({ ...generate, min_score: Joi.number() });

export const fromLayerPayload = navigatorLayerFile.label('NavigatorLayerFile');


const nullableString = Joi.string().allow(null);

export const campaign = Joi.object({
    id: Joi.string().required(),
    name: Joi.string().required(),
    description: nullableString,
    type: type.required(),
    status: status.required(),
    threat_actor_id: nullableString,
    start_date: nullableString,
    end_date: nullableString,
    notes: nullableString,
    blind: Joi.boolean().required(),
    overdue: Joi.boolean().description('An active campaign past its end date'),
    test_count: Joi.number().integer(),
    activated_at: timestamp.allow(null),
    completed_at: timestamp.allow(null),
    version: Joi.number().integer(),
    created_by: nullableString,
    created_at: timestamp,
    updated_at: timestamp
}).label('Campaign');

export const campaignPage = pageOf(campaign, 'CampaignPage');

export const campaignMembership = Joi.object({
    id: Joi.string().required(),
    campaign_id: Joi.string().required(),
    test_id: Joi.string().required(),
    added_by: nullableString,
    created_at: timestamp,
    updated_at: timestamp,
    test: test.required()
}).label('CampaignTest');

export const campaignMemberships = Joi.object({ items: Joi.array().items(campaignMembership).required() }).label('CampaignTests');

const counts = (keys: readonly string[]) => Joi.object(Object.fromEntries(keys.map((key) => [key, Joi.number().integer().required()])));

export const campaignProgress = Joi.object({
    campaign_id: Joi.string().required(),
    total: Joi.number().integer().required(),
    validated: Joi.number().integer().required(),
    percent: Joi.number().required(),
    by_state: counts(testStates).required(),
    by_outcome: counts([...detectionOutcomes, 'none']).required(),
    by_tactic: Joi.array().items(Joi.object({
        tactic: nullableString.required(),
        name: nullableString.required(),
        total: Joi.number().integer().required(),
        validated: Joi.number().integer().required()
    }).label('CampaignTacticProgress')).required()
}).label('CampaignProgress');

export const campaignHistoryEntry = Joi.object({
    id: Joi.string().required(),
    campaign_id: Joi.string().required(),
    actor_id: nullableString,
    actor_role: nullableString,
    action: Joi.string().required(),
    from_status: nullableString,
    to_status: nullableString,
    test_id: nullableString,
    changes: Joi.object().unknown(true),
    created_at: timestamp,
    updated_at: timestamp
}).label('CampaignHistoryEntry');

export const campaignHistoryPage = pageOf(campaignHistoryEntry, 'CampaignHistoryPage');

export const generatedCampaign = Joi.object({
    campaign: campaign.required(),
    created: Joi.array().items(Joi.object({
        test_id: Joi.string().required(),
        technique_id: Joi.string().required(),
        title: Joi.string().required(),
        template_id: nullableString.required()
    }).label('GeneratedTest')).required(),
    skipped: Joi.array().items(Joi.object({
        technique_id: Joi.string().required(),
        reason: Joi.string().valid('revoked', 'deprecated', 'platform', 'coverage', 'unknown_technique', 'disabled', 'score').required(),
        detail: Joi.string().required()
    }).label('SkippedTechnique')).required()
}).label('GeneratedCampaign');

// activate/complete take no input (an empty body or none)
export const campaignTransitionInput = Joi.object({}).allow(null).label('CampaignTransition');

export const campaignHistoryQuery = listQuery([]).keys({ sort: Joi.forbidden(), order: Joi.forbidden() });
