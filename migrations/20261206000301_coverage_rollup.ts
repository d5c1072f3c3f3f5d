import type { Knex } from 'knex';


export const name = '20261206000301_coverage_rollup';


const statuses = ['untested', 'not_covered', 'partial', 'covered'];


// A technique's coverage as every route reads it: coverage_status and score are the figure with the sub-technique
// roll-up (docs/attack.md), own_coverage_status and own_score the technique's own latest validated test.
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.alterTable('techniques', (table) => {

        table.text('own_coverage_status').notNullable().defaultTo('untested').checkIn(statuses, 'techniques_own_coverage_status_check');
        table.smallint('own_score').checkBetween([0, 100], 'techniques_own_score_check');
        table.smallint('score').checkBetween([0, 100], 'techniques_score_check');
    });

    // Until now coverage_status was the technique's own status. The roll-up below is CoverageService.rollUp as of this
    // migration, written once in SQL for the rows that exist; from here on the service computes and stores it.
    await knex.raw(`update techniques t set own_coverage_status = t.coverage_status,
        own_score = (select case x.detection_outcome when 'prevented' then 100 when 'alerted' then 90 when 'logged' then 40 when 'not_detected' then 0 end from tests x where x.id = t.latest_validated_test_id)
        where t.latest_validated_test_id is not null`);
    await knex.raw('update techniques set own_coverage_status = \'untested\', own_score = null where latest_validated_test_id is null');
    await knex.raw(`with members as (
            select p.mitre_id as parent, p.own_coverage_status as status, p.own_score as score from techniques p
                where p.own_coverage_status <> 'untested' and exists (select 1 from techniques s where s.parent_id = p.mitre_id and not s.revoked and not s.deprecated)
            union all
            select s.parent_id, case when s.own_coverage_status = 'untested' then p.own_coverage_status else s.own_coverage_status end,
                case when s.own_coverage_status = 'untested' then p.own_score else s.own_score end
                from techniques s join techniques p on p.mitre_id = s.parent_id where not s.revoked and not s.deprecated
        ),
        rolled as (
            select parent,
                case when bool_and(status = 'untested') then 'untested' when bool_and(status = 'covered') then 'covered'
                    when bool_and(status in ('not_covered', 'untested')) then 'not_covered' else 'partial' end as status,
                case when bool_and(status = 'untested') then null else round(avg(coalesce(score, 0)))::smallint end as score
            from members group by parent
        )
        update techniques t set coverage_status = coalesce(r.status, t.own_coverage_status), score = case when r.parent is null then t.own_score else r.score end
        from techniques o left join rolled r on r.parent = o.mitre_id
        where o.mitre_id = t.mitre_id`);

    await knex.raw(`alter table techniques add constraint techniques_own_coverage_check check (
        (own_coverage_status = 'untested') = (latest_validated_test_id is null) and (own_score is null) = (own_coverage_status = 'untested') and (score is null) = (coverage_status = 'untested'))`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.raw('alter table techniques drop constraint techniques_own_coverage_check');
    await knex.raw('update techniques set coverage_status = own_coverage_status');
    await knex.schema.alterTable('techniques', (table) => {

        table.dropColumn('score');
        table.dropColumn('own_score');
        table.dropColumn('own_coverage_status');
    });
};
