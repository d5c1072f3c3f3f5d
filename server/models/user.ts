import type { Role } from '../policy';
import type { NotificationPreferences } from '../services/notifications';

import { BaseModel } from './base';


export interface Preferences {
    theme?: 'light' | 'dark' | 'system';
    language?: string;
    timezone?: string;
    page_size?: number;
    notifications?: NotificationPreferences;
}


// sso (issue 15): how a user signs in
export type AuthProvider = 'local' | 'saml' | 'oidc';


export class User extends BaseModel {

    static override tableName = 'users';

    declare id: string;
    declare username: string;
    declare email: string | null;
    declare display_name: string | null;
    declare role: Role;
    declare is_active: boolean;
    declare must_change_password: boolean;
    declare password_hash: string | null;
    declare auth_provider: AuthProvider;
    // sso (issue 15): the identity provider's stable key (SAML NameID, OIDC sub); null for a local account
    declare external_id: string | null;
    declare token_version: number;
    declare preferences: Preferences;
    declare last_login_at: Date | null;
    declare created_by: string | null;

    // What leaves the server: everything but the hash and the token version
    static readonly publicColumns = [
        'id', 'username', 'email', 'display_name', 'role', 'is_active', 'must_change_password', 'auth_provider',
        'preferences', 'last_login_at', 'created_by', 'created_at', 'updated_at'
    ];

    // The public fields as a plain object: what /auth/me answers on every call, without objection's serialisation
    static toPublic(user: User): Record<string, unknown> {

        const json: Record<string, unknown> = {};
        for (const column of User.publicColumns) {
            json[column] = user[column as keyof User];
        }

        return json;
    }

    // Never serialised: the hash, the token cut-off and the identity provider's key stay inside the server.
    override $formatJson(json: Record<string, unknown>) {

        const { password_hash, token_version, external_id, ...rest } = super.$formatJson(json);
        return rest;
    }
}
