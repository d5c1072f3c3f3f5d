import type { ReqRef, ReqRefDefaults, ServerRoute } from '@hapi/hapi';


// hapi types one route at a time; the module lists are arrays of differently typed routes. This is the one cast.
export const route = <Refs extends ReqRef = ReqRefDefaults>(definition: ServerRoute<Refs>): ServerRoute => definition as unknown as ServerRoute;
