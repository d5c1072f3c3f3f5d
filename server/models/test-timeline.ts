import { BaseModel } from './base';


export class TestTimelineEntry extends BaseModel {

    static override tableName = 'test_timeline';

    id!: string;
    test_id!: string;
    actor_id!: string | null;
    actor_role!: string | null;
    action!: string;
    from_state!: string | null;
    to_state!: string | null;
    changes!: Record<string, unknown>;
    comment!: string | null;

    static override get jsonAttributes() {

        return ['changes'];
    }
}
