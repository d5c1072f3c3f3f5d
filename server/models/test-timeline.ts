import { BaseModel } from './base';


export class TestTimelineEntry extends BaseModel {

    static override tableName = 'test_timeline';

    declare id: string;
    declare test_id: string;
    declare actor_id: string | null;
    declare actor_role: string | null;
    declare action: string;
    declare from_state: string | null;
    declare to_state: string | null;
    declare changes: Record<string, unknown>;
    declare comment: string | null;

    static override get jsonAttributes() {

        return ['changes'];
    }
}
