import type { Knex } from 'knex';


export const name = '20261207110000_lesson_campaign_key';


// Lessons learned were built beside campaigns, so their campaign_id named a campaign without a foreign key
// (docs/knowledge.md). Now that campaigns exist, an id that names no campaign is set to null, and each lesson so
// changed gets an audit row saying which id it lost (action lesson.campaign_unlinked); then the foreign key, which
// lets a deleted campaign leave its lessons (ON DELETE SET NULL).
export const lessonCampaignKey = async (knex: Knex): Promise<void> => {

    await knex.raw(`
        with unlinked as (
            update lessons l set campaign_id = null
            from (select id, campaign_id from lessons where campaign_id is not null and not exists (select 1 from campaigns c where c.id = lessons.campaign_id) ) o
            where l.id = o.id
            returning l.id, o.campaign_id
        )
        insert into audit_logs (actor_role, action, entity_type, entity_id, outcome, details)
        select 'system', 'lesson.campaign_unlinked', 'lesson', id::text, 'success',
            jsonb_build_object('campaign_id', campaign_id, 'reason', 'the campaign id named no campaign when lessons.campaign_id became a foreign key (migration ${name})')
        from unlinked`);
    await knex.raw('alter table lessons add constraint lessons_campaign_id_foreign foreign key (campaign_id) references campaigns (id) on delete set null');
};


export const up = async (knex: Knex): Promise<void> => {

    await lessonCampaignKey(knex);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.raw('alter table lessons drop constraint lessons_campaign_id_foreign');
};
