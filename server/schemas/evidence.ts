import Joi from 'joi';


export const evidence = Joi.object({
    id: Joi.string().required(),
    test_id: Joi.string().required(),
    team: Joi.string().valid('red', 'blue').required(),
    original_name: Joi.string().required(),
    content_type: Joi.string().required(),
    size: Joi.number().integer().min(1).required(),
    sha256: Joi.string().hex().length(64).required(),
    description: Joi.string().allow(null),
    uploaded_by: Joi.string().allow(null),
    created_at: Joi.date(),
    updated_at: Joi.date()
}).label('Evidence');
