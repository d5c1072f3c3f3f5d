import { Model } from 'objection';


// sso (issue 15, SAML): the shared caches of migrations/20261208120001_saml.ts (docs/sso.md)

// An AuthnRequest this service provider sent and no response has consumed yet
export class SamlRequest extends Model {

    static override tableName = 'saml_requests';

    declare id: string;
    declare created_at: Date;
}


// An assertion accepted once, remembered until it expires
export class SamlAssertion extends Model {

    static override tableName = 'saml_assertions';

    declare id: string;
    declare issuer: string;
    declare expires_at: Date;
    declare created_at: Date;
}
