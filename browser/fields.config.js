// STAC Browser's fields configuration for stac-mmtp, copied over the package's own fields.config.js at build
// time. The labels live in mmtp-fields.json so that the Python tests can check they cover the extension schema.
import { Registry, DataTypes, Helper } from '@radiantearth/stac-fields';
import mmtp from './mmtp-fields.json';

// stac-fields applies `mapping` to a value as a whole, so an array such as mmtp:artefacts would be shown as
// "snow,haze" unmapped: map each element ourselves and let the lists render as lists.
function mapped(spec) {
  const one = v => DataTypes.format(spec.mapping[String(v)] ?? v, spec.unit);
  return value => Array.isArray(value) ? Helper.toList(value, false, one) : one(value);
}

Registry.addExtension('mmtp', mmtp.extension);
for (const [field, spec] of Object.entries(mmtp.metadata)) {
  Registry.addMetadataField(field, spec.mapping ? { ...spec, formatter: mapped(spec) } : spec);
}


// Headings of the link groups: STAC Browser titles a group of links with stac-fields' mapping of `rel` and
// sorts the groups by that heading (components/Links.vue). Our relations get human headings whose order is
// the temporal one (numbered); the build's linkActions.config.js edit imports this file before any link.
const rel = Registry.getSpecification('rel', 'links');
const rels = Object.fromEntries(Object.entries(mmtp.rels).filter(([key]) => !key.startsWith('_')));
Registry.addLinkField('rel', { ...rel, mapping: { ...rel.mapping, ...rels } });
