'''systemd mock template for fleetmedic's integration tests

python3-dbusmock's "systemd" template with what the systemd actuator needs
and the stock template lacks, following systemd's D-Bus API
(shared/reference/api-facts.md, section 1):

- RestartUnit, Subscribe, Unsubscribe, ListUnitsByPatterns (states filter
  on load, active or sub state; fnmatch patterns);
- org.freedesktop.systemd1.NoSuchUnit for units that are not loaded (a
  template instance "a@N.service" is loaded on demand when the template
  "a@.service" was added, as systemd does);
- job objects at /org/freedesktop/systemd1/job/<id> and JobRemoved with a
  result the test chooses per unit (SetJobResult; "hold" sends no
  JobRemoved at all), sent after the method reply or, with SetEarly(true),
  before it (the race the client must survive);
- unit paths escaped like bus_label_escape();
- ActiveState, SubState on the Unit interface and NRestarts on the Service
  interface.

Run: python3 -m dbusmock --system --template <this file>
'''

import fnmatch

import dbus
from gi.repository import GLib

from dbusmock import MOCK_IFACE, mockobject

BUS_NAME = 'org.freedesktop.systemd1'
MAIN_OBJ = '/org/freedesktop/systemd1'
MAIN_IFACE = 'org.freedesktop.systemd1.Manager'
UNIT_IFACE = 'org.freedesktop.systemd1.Unit'
SERVICE_IFACE = 'org.freedesktop.systemd1.Service'
SYSTEM_BUS = True
NO_SUCH_UNIT = 'org.freedesktop.systemd1.NoSuchUnit'


def load(mock, _parameters):
    mock.next_job_id = 1
    mock.units = {}
    mock.job_results = {}
    mock.early = False
    mock.AddProperties(MAIN_IFACE, {'Version': 'v252'})


def label_escape(name):
    '''bus_label_escape(): [A-Za-z0-9] stay, a leading digit and every other byte become _xx.'''
    if not name:
        return '_'
    out = []
    for i, b in enumerate(name.encode()):
        c = chr(b)
        if (c.isascii() and c.isalpha()) or (c.isdigit() and i > 0):
            out.append(c)
        else:
            out.append(f'_{b:02x}')
    return ''.join(out)


def add_unit(mock, name, active='inactive', sub='dead'):
    path = f'{MAIN_OBJ}/unit/{label_escape(name)}'
    mock.units[name] = path
    mock.AddObject(path, UNIT_IFACE,
                   {'Id': name, 'Names': [name], 'LoadState': 'loaded',
                    'ActiveState': active, 'SubState': sub}, [])
    if name.endswith('.service'):
        mockobject.objects[path].AddProperties(SERVICE_IFACE, {'NRestarts': dbus.UInt32(0)})
    return path


def unit_object(mock, name, load_instance):
    name = str(name)
    if name not in mock.units and load_instance:
        at, dot = name.find('@'), name.rfind('.')
        if 0 < at < dot - 1 and name[:at + 1] + name[dot:] in mock.units:
            add_unit(mock, name)
    if name not in mock.units:
        raise dbus.exceptions.DBusException(f'Unit {name} not loaded.', name=NO_SUCH_UNIT)
    return mockobject.objects[mock.units[name]]


def set_state(unit, active, sub):
    unit.UpdateProperties(UNIT_IFACE, {'ActiveState': active, 'SubState': sub})


def run_job(mock, name, kind):
    name = str(name)
    unit = unit_object(mock, name, True)
    job_id = mock.next_job_id
    mock.next_job_id += 1
    job_path = f'{MAIN_OBJ}/job/{job_id}'
    result = mock.job_results.get(name, 'done')

    if result == 'done':
        if kind == 'stop':
            set_state(unit, 'inactive', 'dead')
        else:
            set_state(unit, 'active', 'running')
    elif result == 'failed' and kind != 'stop':
        set_state(unit, 'failed', 'failed')

    def emit():
        mock.EmitSignal(MAIN_IFACE, 'JobNew', 'uos', [job_id, job_path, name])
        mock.EmitSignal(MAIN_IFACE, 'JobRemoved', 'uoss', [job_id, job_path, name, result])
        return False

    if result != 'hold':
        if mock.early:
            emit()
        else:
            GLib.idle_add(emit)
    return job_path


@dbus.service.method(MAIN_IFACE, in_signature='ss', out_signature='o')
def StartUnit(self, name, _mode):
    return run_job(self, name, 'start')


@dbus.service.method(MAIN_IFACE, in_signature='ss', out_signature='o')
def StopUnit(self, name, _mode):
    return run_job(self, name, 'stop')


@dbus.service.method(MAIN_IFACE, in_signature='ss', out_signature='o')
def RestartUnit(self, name, _mode):
    return run_job(self, name, 'restart')


@dbus.service.method(MAIN_IFACE, in_signature='s', out_signature='o')
def GetUnit(self, name):
    return unit_object(self, name, False).path


@dbus.service.method(MAIN_IFACE, in_signature='', out_signature='')
def Subscribe(_self):
    pass


@dbus.service.method(MAIN_IFACE, in_signature='', out_signature='')
def Unsubscribe(_self):
    pass


@dbus.service.method(MAIN_IFACE, in_signature='asas', out_signature='a(ssssssouso)')
def ListUnitsByPatterns(self, states, patterns):
    out = []
    for name, path in sorted(self.units.items()):
        props = mockobject.objects[path].props[UNIT_IFACE]
        load_state, active, sub = props['LoadState'], props['ActiveState'], props['SubState']
        if states and not {str(load_state), str(active), str(sub)} & {str(s) for s in states}:
            continue
        if patterns and not any(fnmatch.fnmatchcase(name, str(p)) for p in patterns):
            continue
        out.append((name, '', load_state, active, sub, '', dbus.ObjectPath(path),
                    dbus.UInt32(0), '', dbus.ObjectPath('/')))
    return dbus.Array(out, signature='(ssssssouso)')


@dbus.service.method(MOCK_IFACE, in_signature='s', out_signature='')
def AddMockUnit(self, name):
    add_unit(self, str(name))


@dbus.service.method(MOCK_IFACE, in_signature='sss', out_signature='')
def SetUnitState(self, name, active, sub):
    set_state(unit_object(self, name, True), str(active), str(sub))


@dbus.service.method(MOCK_IFACE, in_signature='su', out_signature='')
def SetNRestarts(self, name, n):
    unit_object(self, name, False).UpdateProperties(SERVICE_IFACE, {'NRestarts': dbus.UInt32(n)})


@dbus.service.method(MOCK_IFACE, in_signature='ss', out_signature='')
def SetJobResult(self, name, result):
    '''Every later job of unit name ends with result ("hold": never ends).'''
    self.job_results[str(name)] = str(result)


@dbus.service.method(MOCK_IFACE, in_signature='b', out_signature='')
def SetEarly(self, early):
    '''true: JobRemoved goes out before the method reply.'''
    self.early = bool(early)
