// Domain lifecycle, XML, metadata and errors against a private test-driver node.
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.IntegrationTests.Libvirt;

public sealed class DomainTests
{
    private const string QubesNamespace = "https://qubesweb.example/ns/vm/1";

    private static readonly Guid WorkUuid = Guid.Parse("0b6c2a40-7d8e-4f7a-9a62-3c1de5f0b001");

    private static TestNode WorkNode(int runState = TestNode.Shutoff) =>
        new(new TestNodeDomain("work", WorkUuid, runState, MemoryKiB: 262144, Vcpus: 2));

    [Fact]
    public void Define_creates_a_persistent_shut_off_domain_and_undefine_removes_it()
    {
        using var node = new TestNode();
        using var connect = Connect.Open(node.Uri);
        var uuid = Guid.NewGuid();

        using (var defined = connect.DefineDomainXml(TestNode.DomainXml(new TestNodeDomain("fresh", uuid))))
        {
            Assert.Equal("fresh", defined.Name);
            Assert.Equal(uuid, defined.Uuid);
            Assert.True(defined.IsPersistent);
            Assert.False(defined.IsActive);
            Assert.Equal(DomainState.Shutoff, defined.GetState().State);

            defined.Undefine();
        }

        Assert.Null(connect.TryLookupDomainByName("fresh"));
    }

    [Fact]
    public void Defining_malformed_xml_throws_an_xml_detail_error()
    {
        using var node = new TestNode();
        using var connect = Connect.Open(node.Uri);

        var error = Assert.Throws<LibvirtException>(() => connect.DefineDomainXml("<domain type='test'><name>x"));

        // Malformed XML is a parse detail (35), not VIR_ERR_XML_ERROR (27), which means invalid content.
        Assert.Equal(ErrorNumber.XmlDetail, error.Code);
        Assert.Contains("Premature end of data", error.Message);
    }

    [Fact]
    public void Lifecycle_operations_change_the_state()
    {
        using var node = WorkNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");

        work.Create();
        Assert.Equal(DomainState.Running, work.GetState().State);
        Assert.True(work.IsActive);

        work.Suspend();
        Assert.Equal(DomainState.Paused, work.GetState().State);

        work.Resume();
        Assert.Equal(DomainState.Running, work.GetState().State);

        work.Reboot();
        Assert.Equal(DomainState.Running, work.GetState().State);

        work.Shutdown();
        Assert.Equal(DomainState.Shutoff, work.GetState().State);
        Assert.False(work.IsActive);

        work.Create();
        work.Destroy();
        Assert.Equal(DomainState.Shutoff, work.GetState().State);
    }

    [Fact]
    public void State_reason_tells_a_destroy_from_a_shutdown()
    {
        using var node = WorkNode(TestNode.Running);
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");

        work.Destroy();
        var afterDestroy = work.GetState();
        work.Create();
        work.Shutdown();
        var afterShutdown = work.GetState();

        // virDomainShutoffReason: VIR_DOMAIN_SHUTOFF_DESTROYED = 2, VIR_DOMAIN_SHUTOFF_SHUTDOWN = 1
        Assert.Equal((DomainState.Shutoff, 2), afterDestroy);
        Assert.Equal((DomainState.Shutoff, 1), afterShutdown);
    }

    [Fact]
    public void Starting_a_running_domain_throws_naming_the_domain()
    {
        using var node = WorkNode(TestNode.Running);
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");

        var error = Assert.Throws<LibvirtException>(work.Create);

        // The test driver raises VIR_ERR_INTERNAL_ERROR here, not VIR_ERR_OPERATION_INVALID.
        Assert.Equal(ErrorNumber.InternalError, error.Code);
        Assert.Equal(ErrorDomain.Test, error.Domain);
        Assert.Equal("internal error: Domain 'work' is already running", error.Message);
        Assert.Equal(DomainState.Running, work.GetState().State);
    }

    [Fact]
    public void Acting_on_a_domain_in_the_wrong_state_throws()
    {
        using var node = WorkNode(TestNode.Shutoff);
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");

        // Codes differ by call: destroy is checked by libvirt's generic domain code, the rest by the test driver.
        var destroy = Assert.Throws<LibvirtException>(work.Destroy);
        Assert.Equal((ErrorNumber.OperationInvalid, ErrorDomain.Domain), (destroy.Code, destroy.Domain));
        Assert.Equal("Requested operation is not valid: domain is not running", destroy.Message);
        var shutdown = Assert.Throws<LibvirtException>(work.Shutdown);
        Assert.Equal((ErrorNumber.InternalError, "internal error: domain 'work' not running"),
            (shutdown.Code, shutdown.Message));
        Assert.Equal(ErrorNumber.InternalError, Assert.Throws<LibvirtException>(work.Suspend).Code);
        Assert.Equal(ErrorNumber.InternalError, Assert.Throws<LibvirtException>(work.Resume).Code);
        Assert.Equal(DomainState.Shutoff, work.GetState().State);
    }

    [Fact]
    public void Defining_a_second_domain_with_a_taken_name_throws_operation_failed()
    {
        using var node = WorkNode();
        using var connect = Connect.Open(node.Uri);

        var error = Assert.Throws<LibvirtException>(
            () => connect.DefineDomainXml(TestNode.DomainXml(new TestNodeDomain("work", Guid.NewGuid()))));

        Assert.Equal(ErrorNumber.OperationFailed, error.Code);
        Assert.Contains($"domain 'work' already exists with uuid {WorkUuid}", error.Message);
    }

    [Fact]
    public void Info_reports_memory_and_vcpus_from_the_definition()
    {
        using var node = WorkNode(TestNode.Running);
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");

        var info = work.GetInfo();

        Assert.Equal(DomainState.Running, info.State);
        Assert.Equal(262144UL, info.MaxMemoryKiB);
        Assert.Equal(262144UL, info.MemoryKiB);
        Assert.Equal((ushort)2, info.VirtCpus);
    }

    [Fact]
    public void Xml_description_round_trips_a_namespaced_metadata_element()
    {
        using var node = new TestNode();
        using var connect = Connect.Open(node.Uri);
        var metadata = $"""<metadata><q:vm xmlns:q="{QubesNamespace}"><q:label>red</q:label></q:vm></metadata>""";
        using var defined = connect.DefineDomainXml(
            TestNode.DomainXml(new TestNodeDomain("labelled", Guid.NewGuid()), metadata));

        var xml = defined.GetXmlDesc();
        var element = defined.GetMetadata(DomainMetadataType.Element, QubesNamespace);

        Assert.Contains(QubesNamespace, xml);
        Assert.Contains("<q:label>red</q:label>", xml);
        Assert.NotNull(element);
        Assert.Contains("<label>red</label>", element);
        Assert.StartsWith("<vm", element);
        Assert.Null(defined.GetMetadata(DomainMetadataType.Element, "https://qubesweb.example/ns/other"));
    }

    [Fact]
    public void Xml_from_get_xml_desc_can_be_defined_again()
    {
        using var node = WorkNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");

        var xml = work.GetXmlDesc(DomainXmlFlags.Inactive);
        using var redefined = connect.DefineDomainXml(xml);

        Assert.Equal(WorkUuid, redefined.Uuid);
        Assert.Single(connect.ListAllDomains());
    }

    [Fact]
    public void Set_metadata_stores_replaces_and_removes_an_element()
    {
        using var node = WorkNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");

        Assert.Null(work.GetMetadata(DomainMetadataType.Element, QubesNamespace));

        work.SetMetadata(DomainMetadataType.Element, "<vm><label>green</label></vm>", "q", QubesNamespace);
        Assert.Contains("<label>green</label>", work.GetMetadata(DomainMetadataType.Element, QubesNamespace));
        Assert.Contains("<q:label>green</q:label>", work.GetXmlDesc());

        work.SetMetadata(DomainMetadataType.Element, "<vm><label>blue</label></vm>", "q", QubesNamespace);
        Assert.Contains("<label>blue</label>", work.GetMetadata(DomainMetadataType.Element, QubesNamespace));

        work.SetMetadata(DomainMetadataType.Element, null, null, QubesNamespace);
        Assert.Null(work.GetMetadata(DomainMetadataType.Element, QubesNamespace));
    }

    [Fact]
    public void Title_and_description_metadata_round_trip()
    {
        using var node = WorkNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");

        Assert.Null(work.GetMetadata(DomainMetadataType.Title, null));
        work.SetMetadata(DomainMetadataType.Title, "Work qube", null, null);
        work.SetMetadata(DomainMetadataType.Description, "Mail & docs", null, null);

        Assert.Equal("Work qube", work.GetMetadata(DomainMetadataType.Title, null));
        Assert.Equal("Mail & docs", work.GetMetadata(DomainMetadataType.Description, null));
    }

    [Fact]
    public void Autostart_can_be_set_and_read_back()
    {
        using var node = WorkNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");

        Assert.False(work.Autostart);
        work.Autostart = true;
        Assert.True(work.Autostart);
        Assert.Single(connect.ListAllDomains(ConnectListAllDomainsFlags.Autostart));
        work.Autostart = false;
        Assert.False(work.Autostart);
    }

    [Fact]
    public void Undefining_a_running_domain_leaves_it_transient_until_it_stops()
    {
        using var node = WorkNode(TestNode.Running);
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");

        work.Undefine();
        Assert.False(work.IsPersistent);
        Assert.True(work.IsActive);

        work.Destroy();
        Assert.Null(connect.TryLookupDomainByName("work"));
    }

    [Fact]
    public void Calls_from_many_threads_on_one_connection_do_not_interfere()
    {
        var domains = Enumerable.Range(0, 8)
            .Select(i => new TestNodeDomain($"vm{i}", Guid.NewGuid(), TestNode.Shutoff)).ToArray();
        using var node = new TestNode(domains);
        using var connect = Connect.Open(node.Uri);

        Parallel.For(0, 8, i =>
        {
            for (var round = 0; round < 50; round++)
            {
                using var vm = connect.LookupDomainByName($"vm{i}");
                vm.Create();
                Assert.Equal(DomainState.Running, vm.GetState().State);
                // Another thread's errors must never surface here: errors are per OS thread.
                Assert.Null(connect.TryLookupDomainByName($"missing{i}"));
                vm.Destroy();
            }
        });

        Assert.All(connect.ListAllDomains(), d => Assert.Equal(DomainState.Shutoff, d.GetState().State));
    }
}
