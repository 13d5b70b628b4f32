// Lifecycle events delivered on the libvirt event thread, against a private test-driver node.
using QubesWeb.Hypervisor.Libvirt;
using LibvirtLibrary = global::QubesWeb.Hypervisor.Libvirt.Libvirt;

namespace QubesWeb.IntegrationTests.Libvirt;

public sealed class EventsTests
{
    [Fact]
    public async Task Lifecycle_callback_sees_each_transition_of_the_right_domain()
    {
        using var node = new TestNode(new TestNodeDomain("bystander", Guid.NewGuid(), TestNode.Running));
        using var connect = Connect.Open(node.Uri);
        var recorder = new EventRecorder();
        connect.RegisterDomainLifecycleCallback(recorder.Record);
        var uuid = Guid.NewGuid();

        using var vm = connect.DefineDomainXml(TestNode.DomainXml(new TestNodeDomain("events", uuid)));
        var defined = await recorder.WaitFor("events", DomainEventType.Defined);
        vm.Create();
        var started = await recorder.WaitFor("events", DomainEventType.Started);
        vm.Suspend();
        var suspended = await recorder.WaitFor("events", DomainEventType.Suspended);
        vm.Resume();
        var resumed = await recorder.WaitFor("events", DomainEventType.Resumed);
        vm.Shutdown();
        var shutdown = await recorder.WaitFor(e => e.Name == "events" && e.Event == DomainEventType.Stopped);
        vm.Create();
        vm.Destroy();
        var destroyed = await recorder.WaitFor(e => e.Name == "events" && e.Event == DomainEventType.Stopped &&
                                                    e.Detail == (int)DomainEventStoppedDetailType.Destroyed);
        vm.Undefine();
        var undefined = await recorder.WaitFor("events", DomainEventType.Undefined);

        Assert.Equal(uuid, defined.Uuid);
        Assert.Equal((int)DomainEventDefinedDetailType.Added, defined.Detail);
        Assert.Equal((int)DomainEventStartedDetailType.Booted, started.Detail);
        Assert.Equal((int)DomainEventSuspendedDetailType.Paused, suspended.Detail);
        Assert.Equal((int)DomainEventResumedDetailType.Unpaused, resumed.Detail);
        Assert.Equal((int)DomainEventStoppedDetailType.Shutdown, shutdown.Detail);
        Assert.Equal((int)DomainEventUndefinedDetailType.Removed, undefined.Detail);
        Assert.All(recorder.Events, e => Assert.Equal(("events", uuid), (e.Name, e.Uuid)));
    }

    [Fact]
    public async Task Events_arrive_in_the_order_the_operations_happened()
    {
        using var node = new TestNode(new TestNodeDomain("ordered", Guid.NewGuid(), TestNode.Shutoff));
        using var connect = Connect.Open(node.Uri);
        var recorder = new EventRecorder();
        connect.RegisterDomainLifecycleCallback(recorder.Record);
        using var vm = connect.LookupDomainByName("ordered");

        vm.Create();
        vm.Suspend();
        vm.Resume();
        vm.Destroy();
        await recorder.WaitFor("ordered", DomainEventType.Stopped);

        Assert.Equal(
            [DomainEventType.Started, DomainEventType.Suspended, DomainEventType.Resumed, DomainEventType.Stopped],
            recorder.Events.Select(e => e.Event));
    }

    [Fact]
    public async Task Deregistered_callback_receives_nothing_more()
    {
        using var node = new TestNode(new TestNodeDomain("quiet", Guid.NewGuid(), TestNode.Running));
        using var connect = Connect.Open(node.Uri);
        var removed = new EventRecorder();
        var sentinel = new EventRecorder();
        var removedId = connect.RegisterDomainLifecycleCallback(removed.Record);
        connect.RegisterDomainLifecycleCallback(sentinel.Record);
        using var vm = connect.LookupDomainByName("quiet");

        connect.DeregisterDomainEventCallback(removedId);
        vm.Suspend();
        vm.Resume();
        // libvirt dispatches each event to every callback before the next event, so once the sentinel has the
        // later Resumed event, the removed callback has had every chance to see the earlier Suspended one.
        await sentinel.WaitFor("quiet", DomainEventType.Resumed);

        Assert.Empty(removed.Events);
        Assert.Equal(2, sentinel.Events.Count);
    }

    [Fact]
    public void Deregistering_an_unknown_or_already_removed_callback_id_throws()
    {
        using var node = new TestNode();
        using var connect = Connect.Open(node.Uri);
        var id = connect.RegisterDomainLifecycleCallback(_ => { });
        connect.DeregisterDomainEventCallback(id);

        Assert.Throws<ArgumentException>(() => connect.DeregisterDomainEventCallback(id));
        Assert.Throws<ArgumentException>(() => connect.DeregisterDomainEventCallback(987654));
    }

    [Fact]
    public async Task Several_callbacks_on_one_connection_each_receive_every_event()
    {
        using var node = new TestNode(new TestNodeDomain("shared", Guid.NewGuid(), TestNode.Shutoff));
        using var connect = Connect.Open(node.Uri);
        var first = new EventRecorder();
        var second = new EventRecorder();
        var firstId = connect.RegisterDomainLifecycleCallback(first.Record);
        var secondId = connect.RegisterDomainLifecycleCallback(second.Record);
        using var vm = connect.LookupDomainByName("shared");

        vm.Create();
        await first.WaitFor("shared", DomainEventType.Started);
        await second.WaitFor("shared", DomainEventType.Started);

        Assert.NotEqual(firstId, secondId);
    }

    [Fact]
    public async Task Callbacks_on_separate_connections_only_see_their_own_node()
    {
        using var firstNode = new TestNode(new TestNodeDomain("first", Guid.NewGuid()));
        using var secondNode = new TestNode(new TestNodeDomain("second", Guid.NewGuid()));
        using var first = Connect.Open(firstNode.Uri);
        using var second = Connect.Open(secondNode.Uri);
        var firstEvents = new EventRecorder();
        var secondEvents = new EventRecorder();
        first.RegisterDomainLifecycleCallback(firstEvents.Record);
        second.RegisterDomainLifecycleCallback(secondEvents.Record);

        using var firstVm = first.LookupDomainByName("first");
        using var secondVm = second.LookupDomainByName("second");
        firstVm.Create();
        secondVm.Create();
        await firstEvents.WaitFor("first", DomainEventType.Started);
        await secondEvents.WaitFor("second", DomainEventType.Started);

        Assert.All(firstEvents.Events, e => Assert.Equal("first", e.Name));
        Assert.All(secondEvents.Events, e => Assert.Equal("second", e.Name));
    }

    [Fact]
    public async Task A_throwing_callback_is_reported_and_does_not_stop_delivery()
    {
        using var node = new TestNode(new TestNodeDomain("thrower", Guid.NewGuid(), TestNode.Shutoff));
        using var connect = Connect.Open(node.Uri);
        var marker = "boom-" + Guid.NewGuid();
        var reported = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        Action<Exception> onCallbackException = e =>
        {
            if (e.Message == marker)
            {
                reported.TrySetResult(e);
            }
        };
        LibvirtLibrary.CallbackException += onCallbackException;
        try
        {
            var recorder = new EventRecorder();
            connect.RegisterDomainLifecycleCallback(e =>
            {
                recorder.Record(e);
                throw new InvalidOperationException(marker);
            });
            using var vm = connect.LookupDomainByName("thrower");

            vm.Create();
            vm.Destroy();

            await reported.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await recorder.WaitFor("thrower", DomainEventType.Stopped);
        }
        finally
        {
            LibvirtLibrary.CallbackException -= onCallbackException;
        }
    }

    [Fact]
    public async Task A_callback_may_call_back_into_libvirt()
    {
        using var node = new TestNode(new TestNodeDomain("reentrant", Guid.NewGuid(), TestNode.Shutoff));
        using var connect = Connect.Open(node.Uri);
        var stateSeen = new TaskCompletionSource<DomainState>(TaskCreationOptions.RunContinuationsAsynchronously);
        connect.RegisterDomainLifecycleCallback(e =>
        {
            if (e.Event == DomainEventType.Started)
            {
                using var vm = connect.LookupDomainByUuid(e.Uuid);
                stateSeen.TrySetResult(vm.GetState().State);
            }
        });
        using var vm = connect.LookupDomainByName("reentrant");

        vm.Create();

        Assert.Equal(DomainState.Running, await stateSeen.Task.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void Dispose_with_registered_callbacks_is_clean()
    {
        using var node = new TestNode(new TestNodeDomain("vm", Guid.NewGuid()));
        var connect = Connect.Open(node.Uri);
        connect.RegisterDomainLifecycleCallback(_ => { });
        connect.RegisterDomainLifecycleCallback(_ => { });
        connect.RegisterCloseCallback(_ => { });

        connect.Dispose();

        Assert.False(connect.IsAlive);
        Assert.Throws<ObjectDisposedException>(() => connect.RegisterDomainLifecycleCallback(_ => { }));
    }
}
