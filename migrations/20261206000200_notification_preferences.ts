import type { Knex } from 'knex';


export const name = '20261206000200_notification_preferences';


// The notification types of that time; later ones are on unless switched off
const types = ['test.assigned', 'test.review', 'test.validated', 'test.rejected', 'alert.fired', 'campaign.completed', 'report.ready'];


// preferences.notifications.events was a list of the events wanted; it becomes a map per event type, where what is
// not in the list is switched off in the app ({ "test.review": { "in_app": false } })
export const up = async (knex: Knex): Promise<void> => {

    await knex.raw(`
        update users set preferences = jsonb_set(preferences, '{notifications,events}', (
            select coalesce(jsonb_object_agg(type, '{"in_app": false}'::jsonb), '{}'::jsonb)
            from unnest(?::text[]) as type
            where not (preferences #> '{notifications,events}') @> to_jsonb(type)))
        where jsonb_typeof(preferences #> '{notifications,events}') = 'array'`, [types]);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.raw(`
        update users set preferences = jsonb_set(preferences, '{notifications,events}', (
            select coalesce(jsonb_agg(type), '[]'::jsonb)
            from unnest(?::text[]) as type
            where coalesce((preferences #>> array['notifications', 'events', type, 'in_app'])::boolean, true)))
        where jsonb_typeof(preferences #> '{notifications,events}') = 'object'`, [types]);
};
