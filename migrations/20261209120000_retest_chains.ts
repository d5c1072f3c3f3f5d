import type { Knex } from 'knex';


export const name = '20261209120000_retest_chains';


// Issue 12, alerts at a million tests (docs/alerts.md): each retest carries the first test of its retest chain, so that
// coverage_regression finds the validation before a technique's latest one in its chain with one index lookup per
// technique instead of walking every chain. `retest_root_id` is null on a test that retests nothing (it is its own
// chain's root): a chain is `coalesce(retest_root_id, id)`. A trigger keeps it for every writer; a test's retest_of_id
// is set when it is created and never changes.
export const up = async (knex: Knex): Promise<void> => {

    await knex.raw('alter table tests add column retest_root_id uuid');
    await knex.raw(`
        create function tests_retest_root() returns trigger language plpgsql as $$
        begin
            if new.retest_of_id is null then
                new.retest_root_id := null;
            else
                select coalesce(p.retest_root_id, p.id) into new.retest_root_id from tests p where p.id = new.retest_of_id;
            end if;
            return new;
        end $$`);
    await knex.raw('create trigger tests_retest_root before insert or update of retest_of_id on tests for each row execute function tests_retest_root()');

    // The chains that exist, from their roots down (a statement that sets many retest_of_id at once must do the same:
    // the trigger reads the parent's root as that row had it)
    await knex.raw(`
        with recursive chain as (
            select id, id as root from tests where retest_of_id is null
            union all
            select t.id, chain.root from tests t join chain on t.retest_of_id = chain.id
        )
        update tests t set retest_root_id = chain.root from chain where chain.id = t.id and t.retest_of_id is not null and t.retest_root_id is distinct from chain.root`);

    // A chain's validations in order: the one before a given validation is one backward index step
    await knex.raw(`create index tests_retest_chain_index on tests ((coalesce(retest_root_id, id)), validated_at, id) where state = 'validated'`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.raw('drop index if exists tests_retest_chain_index');
    await knex.raw('drop trigger if exists tests_retest_root on tests');
    await knex.raw('drop function if exists tests_retest_root()');
    await knex.raw('alter table tests drop column if exists retest_root_id');
};
