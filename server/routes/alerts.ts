import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { alert, alertActionInput, alertListQuery, alertPage, alertRule, alertRuleCreate, alertRuleListQuery, alertRulePage, alertRuleUpdate, alertSummary, evaluationRequest } from '../schemas/alerts';
import { answers, idParams } from '../schemas/common';
import { alertActions, alertTransitions, type AlertFilters, type AlertRuleCreate, type AlertRuleFilters, type AlertRuleUpdate } from '../services/alerts';

import { route } from './route';


const internals = {
    tags: ['api', 'alerts'],
    descriptions: {
        acknowledge: 'Acknowledge an alert: someone is on it',
        resolve: 'Resolve an alert by hand (an evaluation that finds its condition still holding raises it again)',
        dismiss: 'Dismiss an alert: the rule stays quiet on this subject until the condition clears'
    }
};


export const alertRoutes = [
    route({
        method: 'POST',
        path: '/api/v1/alerts/evaluate',
        options: {
            description: 'Queue an evaluation of every enabled alert rule now (answers the job id; an evaluation already queued or running is answered instead of a second one)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            response: { status: { 202: evaluationRequest } }
        },
        handler: async (request, h) => h.response(await request.services().alerts.requestEvaluation(actorOf(request))).code(202)
    }),

    route({
        method: 'GET',
        path: '/api/v1/alerts/summary',
        options: {
            description: 'Alert counts by status, severity and rule type, and the open or acknowledged ones by severity (over the alerts the caller may see)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            response: { status: { 200: alertSummary } }
        },
        handler: (request) => request.services().alerts.summary(actorOf(request))
    }),

    route<{ Query: AlertFilters }>({
        method: 'GET',
        path: '/api/v1/alerts',
        options: {
            description: 'List alert instances, newest first. Filters: status, severity, rule_type, rule_id, subject_type, technique_id',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: alertListQuery },
            response: { status: { 200: alertPage } }
        },
        handler: (request) => request.services().alerts.list(actorOf(request), request.query)
    }),

    route<{ Query: AlertRuleFilters }>({
        method: 'GET',
        path: '/api/v1/alerts/rules',
        options: {
            description: 'List alert rules. Filters: rule_type, severity, enabled',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: alertRuleListQuery },
            response: { status: { 200: alertRulePage } }
        },
        handler: (request) => request.services().alerts.listRules(actorOf(request), request.query)
    }),

    route<{ Payload: AlertRuleCreate }>({
        method: 'POST',
        path: '/api/v1/alerts/rules',
        options: {
            description: 'Create an alert rule; its parameters are checked against its rule_type and their defaults filled in (docs/alerts.md)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { payload: alertRuleCreate },
            response: { status: { 201: alertRule } }
        },
        handler: async (request, h) => h.response(await request.services().alerts.createRule(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/alerts/rules/{id}',
        options: {
            description: 'An alert rule',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: alertRule } },
            plugins: answers(404)
        },
        handler: (request) => request.services().alerts.getRule(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: AlertRuleUpdate }>({
        method: 'PATCH',
        path: '/api/v1/alerts/rules/{id}',
        options: {
            description: 'Change a rule\'s name, description, parameters (checked against its type, which does not change), severity or enabled flag',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams, payload: alertRuleUpdate },
            response: { status: { 200: alertRule } },
            plugins: answers(404)
        },
        handler: (request) => request.services().alerts.updateRule(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/alerts/rules/{id}',
        options: {
            description: 'Delete a rule and its alert instances',
            tags: internals.tags,
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: idParams },
            plugins: answers(204, 404)
        },
        handler: async (request, h) => {

            await request.services().alerts.removeRule(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/alerts/{id}',
        options: {
            description: 'An alert instance (404 when it refers to a test the caller may not see)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: alert } },
            plugins: answers(404)
        },
        handler: (request) => request.services().alerts.get(actorOf(request), request.params.id)
    }),

    // One route per action of the instance table
    ...alertActions.map((action) => route<{ Params: { id: string }; Payload: { note?: string } | null }>({
        method: 'POST',
        path: `/api/v1/alerts/{id}/${action}`,
        options: {
            description: `${internals.descriptions[action]} (from ${alertTransitions[action].from.join(', ')}; an optional note)`,
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams, payload: alertActionInput },
            response: { status: { 200: alert } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().alerts.transition(actorOf(request), request.params.id, action, request.payload ?? {})
    }))
];
