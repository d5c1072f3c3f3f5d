import Joi from 'joi';


export const uuid = Joi.string().guid({ version: ['uuidv4', 'uuidv5', 'uuidv7'] });

export const idParams = Joi.object({ id: uuid.required() });

// Free text a user types: bounded, and trimmed of surrounding white space
export const text = (max: number) => Joi.string().trim().max(max);

export const searchText = Joi.string().trim().min(1).max(200);

export const timestamp = Joi.date().iso();


// limit/offset/sort/order of conventions.md; `sort` only from the route's allowlist (SEC-17)
export const listQuery = (sortFields: string[], filters: Record<string, Joi.Schema> = {}) => Joi.object({
    limit: Joi.number().integer().min(1).max(500).default(50),
    offset: Joi.number().integer().min(0).max(10_000_000).default(0),
    sort: Joi.string().valid(...sortFields),
    order: Joi.string().valid('asc', 'desc'),
    ...filters
});


export const pageOf = (item: Joi.Schema, label: string) => Joi.object({
    items: Joi.array().items(item).required(),
    total: Joi.number().integer().min(0).required(),
    limit: Joi.number().integer().required(),
    offset: Joi.number().integer().required()
}).unknown(true).label(label);
