/* SPDX-License-Identifier: BSD-3-Clause */
/* The constants muser mirrors from Linux must equal <linux/vfio.h>'s. */
#include <linux/vfio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "muser/wire.h"

#define SAME(a, b) assert_int_equal((uint32_t)(a), (uint32_t)(b))

static void test_region_consts(void **state)
{
	(void)state;
	SAME(MU_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_READ);
	SAME(MU_REGION_INFO_FLAG_WRITE, VFIO_REGION_INFO_FLAG_WRITE);
	SAME(MU_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_MMAP);
	SAME(MU_REGION_INFO_FLAG_CAPS, VFIO_REGION_INFO_FLAG_CAPS);
	SAME(MU_REGION_INFO_CAP_SPARSE_MMAP, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
	SAME(MU_REGION_INFO_CAP_TYPE, VFIO_REGION_INFO_CAP_TYPE);
	/* Linux spells it (1 << 31), undefined behaviour in int: compare the
	 * value it means instead of evaluating the macro. */
	SAME(MU_REGION_TYPE_PCI_VENDOR_TYPE, 0x80000000u);
	SAME(MU_PCI_BAR0_REGION_INDEX, VFIO_PCI_BAR0_REGION_INDEX);
	SAME(MU_PCI_ROM_REGION_INDEX, VFIO_PCI_ROM_REGION_INDEX);
	SAME(MU_PCI_CONFIG_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX);
	SAME(MU_PCI_VGA_REGION_INDEX, VFIO_PCI_VGA_REGION_INDEX);
	SAME(MU_PCI_NUM_REGIONS, VFIO_PCI_NUM_REGIONS);
	SAME(MU_DEVICE_FLAGS_RESET, VFIO_DEVICE_FLAGS_RESET);
	SAME(MU_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_PCI);
	SAME(MU_DMA_UNMAP_FLAG_ALL, VFIO_DMA_UNMAP_FLAG_ALL);
	SAME(MU_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_READ);
	SAME(MU_DMA_MAP_FLAG_WRITE, VFIO_DMA_MAP_FLAG_WRITE);
}

static void test_irq_consts(void **state)
{
	(void)state;
	SAME(MU_PCI_INTX_IRQ_INDEX, VFIO_PCI_INTX_IRQ_INDEX);
	SAME(MU_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX);
	SAME(MU_PCI_MSIX_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX);
	SAME(MU_PCI_ERR_IRQ_INDEX, VFIO_PCI_ERR_IRQ_INDEX);
	SAME(MU_PCI_REQ_IRQ_INDEX, VFIO_PCI_REQ_IRQ_INDEX);
	SAME(MU_PCI_NUM_IRQS, VFIO_PCI_NUM_IRQS);
	SAME(MU_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_EVENTFD);
	SAME(MU_IRQ_INFO_MASKABLE, VFIO_IRQ_INFO_MASKABLE);
	SAME(MU_IRQ_INFO_AUTOMASKED, VFIO_IRQ_INFO_AUTOMASKED);
	SAME(MU_IRQ_INFO_NORESIZE, VFIO_IRQ_INFO_NORESIZE);
	SAME(MU_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_NONE);
	SAME(MU_IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_BOOL);
	SAME(MU_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_EVENTFD);
	SAME(MU_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_MASK);
	SAME(MU_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_ACTION_UNMASK);
	SAME(MU_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_TRIGGER);
}

static void test_feature_consts(void **state)
{
	(void)state;
	SAME(MU_DEVICE_FEATURE_MASK, VFIO_DEVICE_FEATURE_MASK);
	SAME(MU_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_GET);
	SAME(MU_DEVICE_FEATURE_SET, VFIO_DEVICE_FEATURE_SET);
	SAME(MU_DEVICE_FEATURE_PROBE, VFIO_DEVICE_FEATURE_PROBE);
	SAME(MU_DEVICE_FEATURE_MIGRATION, VFIO_DEVICE_FEATURE_MIGRATION);
	SAME(MU_DEVICE_FEATURE_MIG_DEVICE_STATE,
	     VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE);
	SAME(MU_MIGRATION_STOP_COPY, VFIO_MIGRATION_STOP_COPY);
	SAME(MU_MIGRATION_P2P, VFIO_MIGRATION_P2P);
	SAME(MU_MIG_STATE_ERROR, VFIO_DEVICE_STATE_ERROR);
	SAME(MU_MIG_STATE_STOP, VFIO_DEVICE_STATE_STOP);
	SAME(MU_MIG_STATE_RUNNING, VFIO_DEVICE_STATE_RUNNING);
	SAME(MU_MIG_STATE_STOP_COPY, VFIO_DEVICE_STATE_STOP_COPY);
	SAME(MU_MIG_STATE_RESUMING, VFIO_DEVICE_STATE_RESUMING);
	SAME(MU_MIG_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_RUNNING_P2P);
#ifdef VFIO_DEVICE_FEATURE_DMA_LOGGING_START
	SAME(MU_DEVICE_FEATURE_DMA_LOGGING_START,
	     VFIO_DEVICE_FEATURE_DMA_LOGGING_START);
	SAME(MU_DEVICE_FEATURE_DMA_LOGGING_STOP,
	     VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP);
	SAME(MU_DEVICE_FEATURE_DMA_LOGGING_REPORT,
	     VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT);
#endif
#ifdef VFIO_MIGRATION_PRE_COPY
	SAME(MU_MIGRATION_PRE_COPY, VFIO_MIGRATION_PRE_COPY);
	SAME(MU_MIG_STATE_PRE_COPY, VFIO_DEVICE_STATE_PRE_COPY);
#endif
}

/* The structs vfio-user shares with Linux have the same layout. */
static void test_struct_layouts(void **state)
{
	(void)state;
	SAME(sizeof(struct mu_region_info), sizeof(struct vfio_region_info));
	SAME(offsetof(struct mu_region_info, cap_offset),
	     offsetof(struct vfio_region_info, cap_offset));
	SAME(offsetof(struct mu_region_info, offset),
	     offsetof(struct vfio_region_info, offset));
	SAME(sizeof(struct mu_info_cap_header),
	     sizeof(struct vfio_info_cap_header));
	SAME(sizeof(struct mu_region_info_cap_sparse_mmap),
	     sizeof(struct vfio_region_info_cap_sparse_mmap));
	SAME(sizeof(struct mu_sparse_mmap_area),
	     sizeof(struct vfio_region_sparse_mmap_area));
	SAME(sizeof(struct mu_region_info_cap_type),
	     sizeof(struct vfio_region_info_cap_type));
	SAME(sizeof(struct mu_irq_info), sizeof(struct vfio_irq_info));
	SAME(sizeof(struct mu_irq_set), offsetof(struct vfio_irq_set, data));
	SAME(sizeof(struct mu_device_info) ,
	     offsetof(struct vfio_device_info, num_irqs) + 4);
	SAME(sizeof(struct mu_dma_unmap),
	     sizeof(struct vfio_iommu_type1_dma_unmap));
	SAME(sizeof(struct mu_feature_mig_state),
	     sizeof(struct vfio_device_feature_mig_state));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_region_consts),
		cmocka_unit_test(test_irq_consts),
		cmocka_unit_test(test_feature_consts),
		cmocka_unit_test(test_struct_layouts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
