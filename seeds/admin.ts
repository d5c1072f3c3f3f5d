import type { Seed } from '.';


// The first admin (conventions.md "First start"): with no users at all, `admin` with AEGIS_ADMIN_PASSWORD or a
// generated password, which must be changed at first login. The generated one is the only password ever printed.
export const admin: Seed = {
    name: 'admin',
    run: async ({ services, config, logger }) => {

        const bootstrap = await services.users.bootstrapAdmin(config.admin.password);
        if (bootstrap.created) {
            logger.warn(bootstrap.password ? `First start: created user "admin" with the temporary password ${bootstrap.password} (it must be changed at first login)` : 'First start: created user "admin" with AEGIS_ADMIN_PASSWORD (it must be changed at first login)');
        }
    }
};
